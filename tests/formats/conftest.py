"""Helpers for format tests: build tar layers, and judge eStargz output with
the reference verifier and with Python's own tarfile."""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import subprocess
import tarfile
from pathlib import Path

from artifactd.formats.compression import DecompressingReader
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from artifactd.oci.model import (
    Descriptor,
    ImageConfig,
    Manifest,
    canonical_json,
    parse_manifest_or_index,
)


def write_layout(
    root: Path,
    tag: str,
    layers: list[Descriptor],
    diff_ids: list[str],
    blobs: dict[str, bytes],
    os: str = "linux",
) -> None:
    """An OCI layout holding one image tagged ``tag``: a config naming
    ``diff_ids``, a manifest of ``layers``, and the layer ``blobs`` given (by
    digest; a layer may have none)."""
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    config_desc = Descriptor.for_bytes(mt.OCI_CONFIG, config)
    manifest = Manifest(mt.OCI_MANIFEST, config_desc, layers).to_bytes()
    manifest_desc = Descriptor.for_bytes(
        mt.OCI_MANIFEST, manifest, annotations={mt.ANNOTATION_REF_NAME: tag}
    )
    directory = root / "blobs" / "sha256"
    directory.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [manifest_desc.to_json()]}
    (root / "index.json").write_text(json.dumps(index))
    everything = {**blobs, config_desc.digest: config, manifest_desc.digest: manifest}
    for digest, data in everything.items():
        (directory / digest.split(":")[1]).write_bytes(data)


def make_tar(members: list[tuple[tarfile.TarInfo, bytes | None]], **kwargs) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, **kwargs) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_info(name: str, data: bytes, **attrs) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = attrs.pop("mode", 0o644)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def reference_verify(binary: str, blob: Path, toc_digest: str, diff_id: str) -> dict:
    """Run ``estargz-ref verify``; return its JSON report (asserting ok)."""
    proc = subprocess.run(
        [binary, "verify", str(blob), "--toc-digest", toc_digest, "--diff-id", diff_id],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout.splitlines()[-1]) if proc.stdout else {}
    assert proc.returncode == 0 and report.get("ok"), (
        f"estargz-ref rejected {blob}: {proc.stdout} {proc.stderr}"
    )
    assert report["toc_digest_checked"] and report["diff_id_checked"]
    return report


def image_manifests(layout: Layout, reference: str) -> list[Manifest]:
    """Every image manifest an index or manifest (by tag or digest) leads to."""
    if reference.startswith("sha256:"):
        desc = next(d for d in layout.index().manifests if d.digest == reference)
    else:
        desc = layout.resolve(tag=reference)
    return _manifests(layout, desc.digest, desc.media_type)


def _manifests(layout: Layout, digest: str, media_type: str) -> list[Manifest]:
    with layout.open_blob(digest) as handle:
        doc = parse_manifest_or_index(handle.read(), media_type)
    if isinstance(doc, Manifest):
        return [doc]
    result = []
    for child in doc.manifests:
        result.extend(_manifests(layout, child.digest, child.media_type))
    return result


def config_of(layout: Layout, manifest: Manifest) -> ImageConfig:
    return ImageConfig.from_bytes(layout.read_blob(manifest.config))


def layer_files(layout: Layout, digest: str) -> dict[str, bytes]:
    """Regular files of a layer (any compression) as tarfile reads them, by
    normalised name; later entries win, as on extraction."""
    with layout.open_blob(digest) as handle:
        data = DecompressingReader(handle).read()
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        for member in tf:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if member.isreg():
                extracted = tf.extractfile(member)
                assert extracted is not None
                files[name] = extracted.read()
            else:
                files.pop(name, None)
    return files


def is_estargz_layer(desc) -> bool:
    return (
        desc.media_type == mt.OCI_LAYER_GZIP
        and mt.ANNOTATION_TOC_DIGEST in desc.annotations
    )
