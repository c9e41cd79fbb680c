"""Bad layers fail clearly: a message naming the layer and the problem, a
non-zero exit, and nothing written at the destination."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from artifactd.cli import main
from artifactd.oci import mediatypes as mt
from artifactd.oci.model import Descriptor
from tests.formats.conftest import file_info, gz, make_tar, write_layout


def write_image(
    root: Path, layer: bytes, tar: bytes, *, digest: str = "", size: int | None = None
) -> str:
    """An OCI layout tagged ``bad`` whose one layer is ``layer``, stored (and
    described) under ``digest`` and ``size`` when given."""
    layer_digest = digest or "sha256:" + hashlib.sha256(layer).hexdigest()
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer_desc = Descriptor(
        mt.OCI_LAYER_GZIP, layer_digest, len(layer) if size is None else size
    )
    write_layout(root, "bad", [layer_desc], [diff_id], {layer_digest: layer})
    return layer_digest


GOOD_TAR = make_tar([file_info("etc/hosts", b"127.0.0.1 localhost\n" * 50)])


def corrupt_checksum(tar: bytes) -> bytes:
    broken = bytearray(tar)
    broken[0] ^= 0x20  # change the name; the stored checksum no longer fits
    return bytes(broken)


CASES = {
    "truncated-gzip": (gz(GOOD_TAR)[:-60], {}, "gzip stream is truncated"),
    "bad-checksum": (gz(corrupt_checksum(GOOD_TAR)), {}, "bad checksum"),
    "escaping-name": (
        gz(make_tar([file_info("../../etc/passwd", b"root::0:0::/:/bin/sh\n")])),
        {},
        "escapes the layer root",
    ),
    "wrong-digest": (gz(GOOD_TAR), {"digest": "sha256:" + "ab" * 32}, "digest"),
    "wrong-size": (gz(GOOD_TAR), {"size": 10}, "says 10"),
    "bomb": (
        gz(make_tar([file_info("zeros", bytes(3 << 20))])),
        {},
        "decompresses to more than",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_layer_fails_cleanly(case, tmp_path, capsys):
    layer, kwargs, problem = CASES[case]
    source = tmp_path / "src"
    digest = write_image(source, layer, GOOD_TAR, **kwargs)
    dest = tmp_path / "dest"
    status = main(
        [
            "convert",
            "--progress",
            "none",
            "--max-layer-size",
            "2M",
            f"oci:{source}:bad",
            f"oci:{dest}:out",
        ]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert problem in err
    assert digest in err
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_failed_conversion_leaves_an_existing_layout_untouched(tmp_path, capsys):
    source = tmp_path / "src"
    write_image(source, gz(GOOD_TAR), GOOD_TAR)
    dest = tmp_path / "dest"
    assert (
        main(["convert", "--progress", "none", f"oci:{source}:bad", f"oci:{dest}:ok"])
        == 0
    )
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}

    bad = tmp_path / "bad"
    write_image(bad, gz(GOOD_TAR)[:-60], GOOD_TAR)
    assert (
        main(["convert", "--progress", "none", f"oci:{bad}:bad", f"oci:{dest}:ok"]) == 1
    )
    after = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert after == before
    index = json.loads((dest / "index.json").read_bytes())
    assert [m["annotations"][mt.ANNOTATION_REF_NAME] for m in index["manifests"]] == [
        "ok"
    ]


def test_missing_tag_is_reported(tmp_path, capsys):
    source = tmp_path / "src"
    write_image(source, gz(GOOD_TAR), GOOD_TAR)
    assert main(["convert", f"oci:{source}:nope", f"oci:{tmp_path / 'd'}"]) == 1
    assert "no tag 'nope' (tags: bad)" in capsys.readouterr().err


def test_unknown_reference_scheme_is_reported(tmp_path, capsys):
    assert main(["convert", "ftp://x/y", f"oci:{tmp_path}"]) == 1
    assert "unknown reference" in capsys.readouterr().err


def test_relative_prioritized_path_is_refused(tmp_path, capsys):
    listing = tmp_path / "list"
    listing.write_text("etc/hosts\n")
    source = tmp_path / "src"
    write_image(source, gz(GOOD_TAR), GOOD_TAR)
    status = main(
        [
            "convert",
            "--prioritized-files",
            str(listing),
            f"oci:{source}:bad",
            f"oci:{tmp_path / 'd'}",
        ]
    )
    assert status == 1
    assert "is not an absolute path" in capsys.readouterr().err
