"""Layers the converter does not rewrite: foreign layers, which no one has
the bytes of, and layers that are eStargz already."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from artifactd.cli import main
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout, blob_path
from artifactd.oci.model import Descriptor, Manifest, canonical_json
from tests.formats.conftest import (
    file_info,
    gz,
    image_manifests,
    make_tar,
    reference_verify,
)

FOREIGN_URL = "https://example.invalid/windows/base.tar.gz"


def write_with_foreign_layer(root: Path) -> Descriptor:
    """A layout tagged ``v1``: a foreign base layer (its blob absent, as it is
    in any registry) under an ordinary gzip layer. Returns the foreign one."""
    tar = make_tar([file_info("app/run.sh", b"#!/bin/sh\necho hi\n" * 40)])
    layer = gz(tar)
    foreign = Descriptor(
        mt.DOCKER_LAYER_FOREIGN,
        "sha256:" + hashlib.sha256(b"not here").hexdigest(),
        123_456_789,
        extra={"urls": [FOREIGN_URL]},
    )
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "windows",
            "rootfs": {
                "type": "layers",
                "diff_ids": [
                    "sha256:" + "0f" * 32,
                    "sha256:" + hashlib.sha256(tar).hexdigest(),
                ],
            },
        }
    )
    config_desc = Descriptor.for_bytes(mt.OCI_CONFIG, config)
    layer_desc = Descriptor.for_bytes(mt.OCI_LAYER_GZIP, layer)
    manifest = Manifest(mt.OCI_MANIFEST, config_desc, [foreign, layer_desc]).to_bytes()
    manifest_desc = Descriptor.for_bytes(
        mt.OCI_MANIFEST, manifest, annotations={mt.ANNOTATION_REF_NAME: "v1"}
    )
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [manifest_desc.to_json()]}
    (root / "index.json").write_text(json.dumps(index))
    for desc, data in (
        (layer_desc, layer),
        (config_desc, config),
        (manifest_desc, manifest),
    ):
        (blobs / desc.digest.split(":")[1]).write_bytes(data)
    return foreign


def convert(source: Path, dest: Path, tag: str) -> int:
    return main(
        ["convert", "--progress", "none", f"oci:{source}:{tag}", f"oci:{dest}:{tag}"]
    )


def test_foreign_layer_is_kept_as_it_is_without_its_blob(tmp_path, estargz_ref):
    source, dest = tmp_path / "src", tmp_path / "dest"
    foreign = write_with_foreign_layer(source)
    assert convert(source, dest, "v1") == 0
    out = Layout.open(dest)
    [manifest] = image_manifests(out, "v1")
    kept, converted = manifest.layers
    assert (kept.media_type, kept.digest, kept.size) == (
        foreign.media_type,
        foreign.digest,
        foreign.size,
    )
    assert kept.extra["urls"] == [FOREIGN_URL]
    assert not out.has_blob(foreign.digest)
    assert mt.ANNOTATION_TOC_DIGEST in converted.annotations
    config = json.loads(out.read_blob(manifest.config))
    base_diff_id, diff_id = config["rootfs"]["diff_ids"]
    assert base_diff_id == "sha256:" + "0f" * 32
    reference_verify(
        estargz_ref,
        blob_path(dest, converted.digest),
        converted.annotations[mt.ANNOTATION_TOC_DIGEST],
        diff_id,
    )


def test_estargz_layers_pass_through_a_second_conversion(tmp_path):
    source, once, twice = tmp_path / "src", tmp_path / "once", tmp_path / "twice"
    write_with_foreign_layer(source)
    assert convert(source, once, "v1") == 0
    assert convert(once, twice, "v1") == 0
    [first] = image_manifests(Layout.open(once), "v1")
    [second] = image_manifests(Layout.open(twice), "v1")
    assert [d.digest for d in second.layers] == [d.digest for d in first.layers]
    assert second.config.digest == first.config.digest
