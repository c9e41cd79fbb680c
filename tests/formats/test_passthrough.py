"""Layers the converter does not rewrite: foreign layers, which no one has
the bytes of, and layers that are eStargz already."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from artifactd.cli import main
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout, blob_path
from artifactd.oci.model import Descriptor
from tests.formats.conftest import (
    file_info,
    gz,
    image_manifests,
    make_tar,
    reference_verify,
    write_layout,
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
    layer_desc = Descriptor.for_bytes(mt.OCI_LAYER_GZIP, layer)
    diff_ids = ["sha256:" + "0f" * 32, "sha256:" + hashlib.sha256(tar).hexdigest()]
    write_layout(
        root,
        "v1",
        [foreign, layer_desc],
        diff_ids,
        {layer_desc.digest: layer},
        "windows",
    )
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
