"""``artifactd inspect REF``: an image's manifests and layers, with a TOC
summary for accelerated layers."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

from artifactd.errors import ConfigError
from artifactd.formats.estargz import (
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    EStargzReader,
    FileRandomAccess,
)
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout, blob_path
from artifactd.oci.model import Descriptor, Index, parse_manifest_or_index
from artifactd.oci.reference import LayoutReference, parse_reference


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show an image's layers and eStargz TOC summaries",
        description="Show the manifests and layers of oci:DIR[:TAG].",
    )
    parser.add_argument("reference", metavar="REF")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ref = parse_reference(args.reference)
    if not isinstance(ref, LayoutReference):
        raise ConfigError("inspect reads oci:DIR[:TAG] references")
    layout = Layout.open(ref.path)
    desc = layout.resolve(tag=ref.tag, digest=ref.digest)
    report = _describe(layout, desc)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print(report)
    return 0


def _describe(layout: Layout, desc: Descriptor) -> dict[str, Any]:
    doc = parse_manifest_or_index(layout.read_blob(desc), desc.media_type)
    report: dict[str, Any] = {
        "digest": desc.digest,
        "mediaType": doc.media_type,
        "platform": str(desc.platform) if desc.platform else "",
    }
    if isinstance(doc, Index):
        report["manifests"] = [_describe(layout, child) for child in doc.manifests]
        return report
    report["layers"] = [_layer(layout, layer) for layer in doc.layers]
    return report


def _layer(layout: Layout, layer: Descriptor) -> dict[str, Any]:
    info: dict[str, Any] = {
        "digest": layer.digest,
        "mediaType": layer.media_type,
        "size": layer.size,
    }
    toc_digest = layer.annotations.get(mt.ANNOTATION_TOC_DIGEST)
    if not toc_digest or not layout.has_blob(layer.digest):
        return info
    with FileRandomAccess(blob_path(layout.root, layer.digest)) as blob:
        reader = EStargzReader(blob, toc_digest)
        types = Counter(entry.type for entry in reader.entries)
        names = [entry.name for entry in reader.entries]
    landmark = PREFETCH_LANDMARK if PREFETCH_LANDMARK in names else ""
    info["toc"] = {
        "digest": reader.toc_digest,
        "entries": len(reader.entries),
        "types": dict(sorted(types.items())),
        "uncompressedSize": int(
            layer.annotations.get(mt.ANNOTATION_UNCOMPRESSED_SIZE, 0)
        ),
        "prefetchLandmark": bool(landmark),
        "prioritizedFiles": names.index(landmark) if landmark else 0,
        "noPrefetchLandmark": NO_PREFETCH_LANDMARK in names,
    }
    return info


def _print(report: dict[str, Any], indent: str = "") -> None:
    platform = f" [{report['platform']}]" if report["platform"] else ""
    print(f"{indent}{report['mediaType']} {report['digest']}{platform}")
    for child in report.get("manifests", []):
        _print(child, indent + "  ")
    for number, layer in enumerate(report.get("layers", []), 1):
        print(
            f"{indent}  layer {number}: {layer['digest']} "
            f"{layer['size'] / 1e6:.1f} MB {layer['mediaType']}"
        )
        toc = layer.get("toc")
        if toc:
            kinds = ", ".join(f"{n} {t}" for t, n in toc["types"].items())
            prefetch = (
                f"{toc['prioritizedFiles']} prioritized entries"
                if toc["prefetchLandmark"]
                else "no prefetch"
            )
            print(
                f"{indent}    eStargz TOC {toc['digest']}: {toc['entries']} entries "
                f"({kinds}); {toc['uncompressedSize'] / 1e6:.1f} MB "
                f"uncompressed; {prefetch}"
            )
