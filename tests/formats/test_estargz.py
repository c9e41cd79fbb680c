"""The eStargz writer and reader on generated layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifactd.formats.estargz import (
    BuildOptions,
    EStargzReader,
    FileRandomAccess,
    build_estargz,
)
from artifactd.formats.estargz.toc import FOOTER_SIZE, parse_footer
from tests.formats.conftest import file_info, gz, make_tar, reference_verify


def build(layer: bytes, tmp_path: Path, **options) -> tuple[Path, object]:
    blob = tmp_path / "layer.esgz"
    with blob.open("wb") as out:
        result = build_estargz(io.BytesIO(layer), out, BuildOptions(**options))
    return blob, result


def output_members(blob: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tf:
        return tf.getmembers()


def test_every_tar_entry_kind_survives(tmp_path, estargz_ref):
    members = [
        (tarfile.TarInfo("dir"), None),
        file_info("dir/file", b"hello\n", uid=70000, gid=3000000000, uname="u" * 40),
        file_info("dir/empty", b""),
        file_info("dir/" + "long" * 70, b"long name"),
    ]
    members[0][0].type = tarfile.DIRTYPE
    members[0][0].mode = 0o1777
    link = tarfile.TarInfo("dir/hard")
    link.type, link.linkname = tarfile.LNKTYPE, "dir/file"
    sym = tarfile.TarInfo("dir/sym")
    sym.type, sym.linkname = tarfile.SYMTYPE, "../" + "t" * 300
    chardev = tarfile.TarInfo("dev/null")
    chardev.type, chardev.devmajor, chardev.devminor = tarfile.CHRTYPE, 1, 3
    block = tarfile.TarInfo("dev/sda")
    block.type, block.devmajor, block.devminor = tarfile.BLKTYPE, 8, 1048575
    fifo = tarfile.TarInfo("run/fifo")
    fifo.type = tarfile.FIFOTYPE
    xattr = file_info("bin/ping", b"\x7fELF", mode=0o4755)
    xattr[0].pax_headers = {
        "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
        "SCHILY.xattr.user.empty": "",
    }
    whiteout = file_info("dir/.wh.gone", b"")
    opaque = file_info("dir/.wh..wh..opq", b"")
    members += [(link, None), (sym, None), (chardev, None), (block, None)]
    members += [(fifo, None), xattr, whiteout, opaque]
    layer = make_tar(members)
    blob, result = build(gz(layer), tmp_path)

    report = reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)
    assert report["types"] == {
        "block": 1,
        "char": 1,
        "dir": 1,
        "fifo": 1,
        "hardlink": 1,
        "reg": 7,
        "symlink": 1,
    }
    out = {m.name: m for m in output_members(blob)}
    for info, _ in members:
        got = out[info.name]
        assert (got.type, got.mode, got.uid, got.gid) == (
            info.type,
            info.mode,
            info.uid,
            info.gid,
        )
        assert got.linkname == info.linkname
        assert (got.devmajor, got.devminor) == (info.devmajor, info.devminor)
    assert out["bin/ping"].pax_headers["SCHILY.xattr.security.capability"] == (
        "\x01\x00\x00\x02"
    )
    with FileRandomAccess(blob) as source:
        reader = EStargzReader(source, result.toc_digest)
        assert reader.read_file("dir/hard") == b"hello\n"
        assert reader.lookup("bin/ping").xattrs["security.capability"] == (
            b"\x01\x00\x00\x02"
        )
        assert reader.lookup("dir/file").user_name == "u" * 40


def test_large_file_is_chunked_and_read_by_range(tmp_path, estargz_ref):
    data = hashlib.sha256(b"seed").digest() * (3 * 4096 + 7)  # ~393 KB
    layer = make_tar([file_info("big", data)])
    blob, result = build(layer, tmp_path, chunk_size=100_000)

    report = reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)
    assert report["chunks"] == 4 + 1  # the landmark is a one-chunk file too
    with FileRandomAccess(blob) as source:
        reader = EStargzReader(source)
        assert reader.read_file("big") == data
        before = source.bytes_read
        assert reader.read_file("big", 250_000, 10) == data[250_000:250_010]
        # One chunk's member, not the whole blob, was fetched for that range.
        assert 0 < source.bytes_read - before < 110_000
        assert reader.read_file("big", 99_990, 20) == data[99_990:100_010]


def test_source_compressions_give_the_same_blob(tmp_path):
    layer = make_tar([file_info("a", b"x" * 5000), file_info("b", b"y")])
    results = []
    for data in (layer, gz(layer), zstandard.ZstdCompressor().compress(layer)):
        _, result = build(data, tmp_path)
        results.append((result.digest, result.source_diff_id))
    assert len(set(results)) == 1
    assert results[0][1] == "sha256:" + hashlib.sha256(layer).hexdigest()


def test_footer_is_51_bytes_and_points_at_the_toc(tmp_path):
    blob, result = build(gz(make_tar([file_info("f", b"1")])), tmp_path)
    data = blob.read_bytes()
    toc_offset, size = parse_footer(data[-FOOTER_SIZE:])
    assert size == 51
    toc_tar = gzip.decompress(data[toc_offset:-FOOTER_SIZE])
    assert toc_tar[:17] == b"stargz.index.json"
    assert gzip.decompress(data[-FOOTER_SIZE:]) == b""


def test_empty_layer_converts(tmp_path, estargz_ref):
    blob, result = build(gz(make_tar([])), tmp_path)
    report = reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)
    assert report["entries"] == 1  # the landmark


def test_names_are_normalised_in_the_toc(tmp_path, estargz_ref):
    layer = make_tar(
        [file_info("./x", b"1"), file_info("/y", b"2"), file_info("a/../b", b"3")]
    )
    blob, result = build(layer, tmp_path)
    reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)
    with FileRandomAccess(blob) as source:
        reader = EStargzReader(source)
        assert [reader.read_file(n) for n in ("x", "y", "b")] == [b"1", b"2", b"3"]


def test_reference_lazy_read_fetches_a_small_fraction(tmp_path, estargz_ref):
    files = [file_info(f"f{i}", random.Random(i).randbytes(50_000)) for i in range(40)]
    blob, _ = build(make_tar(files), tmp_path)
    proc = subprocess.run(
        [estargz_ref, "lazyread", str(blob), "f7"], capture_output=True, text=True
    )
    report = json.loads(proc.stdout)
    assert report["ok"], proc.stdout
    # One file of forty, plus footer and TOC.
    assert report["fraction_of_blob"] < 0.05


# Property-based: random layers round-trip.

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\0"),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", ".."))
contents = st.one_of(
    st.binary(max_size=3000),
    st.builds(
        lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 900)
    ),
)


@st.composite
def layers(draw):
    count = draw(st.integers(0, 12))
    members, used = [], set()
    for _ in range(count):
        name = "/".join(draw(st.lists(names, min_size=1, max_size=3)))
        if name in used or any(name.startswith(u + "/") for u in used):
            continue
        if any(u.startswith(name + "/") for u in used):
            continue
        used.add(name)
        kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink"]))
        info = tarfile.TarInfo(name)
        info.mtime = draw(st.integers(0, 2**33))
        info.uid = draw(st.integers(0, 2**32 - 1))
        info.mode = draw(st.integers(0, 0o7777))
        data = None
        files = [m for m, d in members if m.isreg()]
        if kind == "dir":
            info.type = tarfile.DIRTYPE
        elif kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, draw(names)
        elif kind == "hardlink" and files:
            info.type, info.linkname = (
                tarfile.LNKTYPE,
                draw(st.sampled_from(files)).name,
            )
        else:
            data = draw(contents)
            info.size = len(data)
            if draw(st.booleans()):
                info.pax_headers = {"SCHILY.xattr.user.k": draw(names)}
        members.append((info, data))
    return members


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    members=layers(),
    chunk_size=st.integers(1, 2048),
    compress=st.booleans(),
    level=st.integers(0, 9),
)
def test_random_layers_round_trip(
    members, chunk_size, compress, level, tmp_path_factory
):
    tmp_path = tmp_path_factory.mktemp("prop")
    layer = make_tar(members)
    blob, result = build(
        gz(layer) if compress else layer, tmp_path, chunk_size=chunk_size, level=level
    )
    raw = gzip.decompress(blob.read_bytes())
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result.diff_id
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        out = {m.name: (m, tf.extractfile(m).read() if m.isreg() else None) for m in tf}
    with FileRandomAccess(blob) as source:
        reader = EStargzReader(source, result.toc_digest)
        for info, data in members:
            got, got_data = out[info.name]
            assert (got.type, got.mode, got.uid, got.mtime, got.linkname) == (
                info.type,
                info.mode,
                info.uid,
                info.mtime,
                info.linkname,
            )
            if info.isreg():
                assert got_data == data
                assert reader.read_file(info.name) == data
                assert (
                    reader.read_file(info.name, len(data) // 3, 17)
                    == (data[len(data) // 3 : len(data) // 3 + 17])
                )
    assert list(out)[0] == ".no.prefetch.landmark"
    assert list(out)[-1] == "stargz.index.json"


@pytest.mark.parametrize("level", [1, 9])
def test_reference_verifies_random_layer(level, tmp_path, estargz_ref):
    members = [file_info(f"d/f{i}", bytes(range(256)) * i) for i in range(30)]
    blob, result = build(make_tar(members), tmp_path, chunk_size=1000, level=level)
    reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)


def test_a_prioritized_name_written_twice_keeps_its_last_content(tmp_path, estargz_ref):
    layer = make_tar(
        [
            file_info("etc/app.conf", b"old\n"),
            file_info("etc/other", b"x\n"),
            file_info("etc/app.conf", b"new\n"),
        ]
    )
    blob, result = build(layer, tmp_path, prioritized_files=["/etc/app.conf"])
    reference_verify(estargz_ref, blob, result.toc_digest, result.diff_id)

    members = output_members(blob)
    names = [m.name for m in members]
    assert names.count("etc/app.conf") == 1
    assert names.index("etc/app.conf") < names.index(".prefetch.landmark")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tf:
        extracted = tf.extractfile(tf.getmember("etc/app.conf"))
        assert extracted is not None and extracted.read() == b"new\n"
