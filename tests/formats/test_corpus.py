"""Every corpus image converts, and independent tools accept the result."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from artifactd.cli import main
from artifactd.errors import ConversionCanceled
from artifactd.formats.estargz import EStargzReader, FileRandomAccess
from artifactd.formats.image import ConvertOptions, convert_image
from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout, LayoutSink, LayoutSource, blob_path
from tests.formats.conftest import (
    config_of,
    image_manifests,
    is_estargz_layer,
    layer_files,
    reference_verify,
)

CORPUS_IMAGES = [
    ("debian", "bookworm"),
    ("pyapp", "latest"),
    ("edge", "latest"),
    ("multiarch", "latest"),
    ("docker-v2", "gzip"),
    ("docker-v2", "uncompressed"),
    ("docker-v2", "zstd"),
]


@pytest.fixture(scope="module")
def converted(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Convert each corpus image once, through the CLI, into its own layout."""
    out = tmp_path_factory.mktemp("converted")
    results = {}
    for image, tag in CORPUS_IMAGES:
        dest = out / f"{image}-{tag}"
        status = main(
            [
                "convert",
                "--progress",
                "none",
                f"oci:{corpus_dir / image}:{tag}",
                f"oci:{dest}:{tag}",
            ]
        )
        assert status == 0
        results[(image, tag)] = dest
    return results


@pytest.mark.parametrize(("image", "tag"), CORPUS_IMAGES)
def test_reference_accepts_every_layer(converted, corpus_dir, estargz_ref, image, tag):
    layout = Layout.open(converted[(image, tag)])
    source = Layout.open(corpus_dir / image)
    manifests = image_manifests(layout, tag)
    assert len(manifests) == len(image_manifests(source, tag))
    for manifest in manifests:
        assert manifest.media_type == mt.OCI_MANIFEST
        assert manifest.config.media_type == mt.OCI_CONFIG
        config = config_of(layout, manifest)
        assert len(config.diff_ids) == len(manifest.layers)
        for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
            assert is_estargz_layer(layer), layer
            report = reference_verify(
                estargz_ref,
                blob_path(layout.root, layer.digest),
                layer.annotations[mt.ANNOTATION_TOC_DIGEST],
                diff_id,
            )
            assert report["uncompressed_size"] == int(
                layer.annotations[mt.ANNOTATION_UNCOMPRESSED_SIZE]
            )
            assert report["no_prefetch_landmark"]


@pytest.mark.parametrize(("image", "tag"), CORPUS_IMAGES)
def test_skopeo_accepts_every_output(converted, skopeo, image, tag):
    dest = converted[(image, tag)]
    proc = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci:{dest}:{tag}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(proc.stdout)
    if raw["mediaType"] == mt.OCI_INDEX:
        assert len(raw["manifests"]) == 2
        for child in raw["manifests"]:
            plat = child["platform"]
            proc = subprocess.run(
                [
                    skopeo,
                    "inspect",
                    "--override-os",
                    plat["os"],
                    "--override-arch",
                    plat["architecture"],
                    f"oci:{dest}:{tag}",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode == 0, proc.stderr
    else:
        proc = subprocess.run(
            [skopeo, "inspect", f"oci:{dest}:{tag}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert len(json.loads(proc.stdout)["Layers"]) == len(raw["layers"])


@pytest.mark.parametrize(("image", "tag"), CORPUS_IMAGES)
def test_files_read_back_equal_the_source(converted, corpus_dir, image, tag):
    """Every regular file read lazily through our reader equals the source's."""
    layout = Layout.open(converted[(image, tag)])
    source = Layout.open(corpus_dir / image)
    pairs = zip(image_manifests(source, tag), image_manifests(layout, tag), strict=True)
    for src_manifest, dst_manifest in pairs:
        for src, dst in zip(src_manifest.layers, dst_manifest.layers, strict=True):
            expected = layer_files(source, src.digest)
            with FileRandomAccess(blob_path(layout.root, dst.digest)) as blob:
                reader = EStargzReader(blob, dst.annotations[mt.ANNOTATION_TOC_DIGEST])
                regular = {n for n in reader.names() if reader.lookup(n).type == "reg"}
                assert set(expected) <= regular | {""}
                for name, data in expected.items():
                    assert reader.read_file(name) == data, name


def test_config_keeps_history_and_rewrites_diff_ids(converted, corpus_dir):
    source = Layout.open(corpus_dir / "pyapp")
    layout = Layout.open(converted[("pyapp", "latest")])
    [src_manifest] = image_manifests(source, "latest")
    [dst_manifest] = image_manifests(layout, "latest")
    src_config, dst_config = (
        config_of(source, src_manifest),
        config_of(layout, dst_manifest),
    )
    assert dst_config.history == src_config.history
    assert dst_config.raw["config"] == src_config.raw["config"]
    assert dst_config.diff_ids != src_config.diff_ids
    assert len(set(dst_config.diff_ids)) == len(dst_config.diff_ids)


def test_docker_media_types_become_oci(converted):
    layout = Layout.open(converted[("docker-v2", "gzip")])
    index = json.loads((layout.root / "index.json").read_bytes())
    assert index["manifests"][0]["mediaType"] == mt.OCI_MANIFEST
    [manifest] = image_manifests(layout, "gzip")
    assert all(layer.media_type == mt.OCI_LAYER_GZIP for layer in manifest.layers)


def test_same_content_converts_to_the_same_image(converted):
    """gzip, uncompressed and zstd sources of one tar give one accelerated image."""
    digests = {
        Layout.open(converted[("docker-v2", tag)]).resolve(tag=tag).digest
        for tag in ("gzip", "uncompressed", "zstd")
    }
    assert len(digests) == 1


def test_prioritized_files_come_before_the_landmark(corpus_dir, tmp_path, estargz_ref):
    wanted = ["/etc/os-release", "/usr/bin/bash", "/usr/lib/os-release"]
    listing = tmp_path / "prioritized.txt"
    listing.write_text("\n".join(wanted + ["# comment", "/does/not/exist"]) + "\n")
    dest = tmp_path / "out"
    status = main(
        [
            "convert",
            "--progress",
            "none",
            "--prioritized-files",
            str(listing),
            f"oci:{corpus_dir / 'debian'}:bookworm",
            f"oci:{dest}:prio",
        ]
    )
    assert status == 0
    layout = Layout.open(dest)
    [manifest] = image_manifests(layout, "prio")
    [layer] = manifest.layers
    blob = blob_path(dest, layer.digest)
    listed = subprocess.run(
        [estargz_ref, "ls", str(blob)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    names = [json.loads(line)["name"] for line in listed]
    landmark = names.index(".prefetch.landmark")
    before = names[:landmark]
    # Each prioritized file sits before the landmark, in the order given, after
    # its parent directories.
    positions = [before.index(p.lstrip("/")) for p in wanted]
    assert positions == sorted(positions)
    assert before.index("usr") < before.index("usr/bin") < positions[1]
    assert len(before) < 12
    config = config_of(layout, manifest)
    report = reference_verify(
        estargz_ref,
        blob,
        layer.annotations[mt.ANNOTATION_TOC_DIGEST],
        config.diff_ids[0],
    )
    assert report["prefetch_landmark"] and not report["no_prefetch_landmark"]


class MemoryCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple] = {}

    def get(self, source_digest, options_key):
        return self.entries.get((source_digest, options_key))

    def put(self, source_digest, options_key, converted, diff_id):
        self.entries[(source_digest, options_key)] = (converted, diff_id)


def test_shared_base_layer_is_converted_once_across_images(corpus_dir, tmp_path):
    """debian and pyapp share their base layer: the second run reuses it."""
    cache, events = MemoryCache(), []
    dest = tmp_path / "shared"
    for image, tag in (("debian", "bookworm"), ("pyapp", "latest")):
        sink = LayoutSink(dest)
        convert_image(
            LayoutSource(Layout.open(corpus_dir / image)),
            sink,
            tag,
            tag,
            ConvertOptions(),
            events.append,
            sink.work_dir,
            cache,
        )
        sink.commit()
    built = [e.digest for e in events if e.finished and e.seconds]
    reused = [e.digest for e in events if e.finished and not e.seconds]
    base = image_manifests(Layout.open(corpus_dir / "debian"), "bookworm")[0]
    assert built.count(base.layers[0].digest) == 1
    assert reused == [base.layers[0].digest]
    layout = Layout.open(dest)
    [deb] = image_manifests(layout, "bookworm")
    [app] = image_manifests(layout, "latest")
    assert app.layers[0].digest == deb.layers[0].digest


def test_cancel_stops_the_conversion_and_tags_nothing(corpus_dir, tmp_path):
    cancel = threading.Event()

    def progress(event):
        if event.done > 4 << 20:
            cancel.set()

    sink = LayoutSink(tmp_path / "canceled")
    started = time.monotonic()
    with pytest.raises(ConversionCanceled):
        convert_image(
            LayoutSource(Layout.open(corpus_dir / "debian")),
            sink,
            "bookworm",
            "x",
            ConvertOptions(),
            progress,
            sink.work_dir,
            cancel=cancel,
        )
    sink.abort()
    assert time.monotonic() - started < 2
    assert not (tmp_path / "canceled").exists()


def test_platform_selection_keeps_only_the_chosen_manifest(corpus_dir, tmp_path):
    dest = tmp_path / "arm"
    status = main(
        [
            "convert",
            "--progress",
            "none",
            "--platform",
            "linux/arm64",
            f"oci:{corpus_dir / 'multiarch'}:latest",
            f"oci:{dest}:arm",
        ]
    )
    assert status == 0
    index = json.loads(
        Layout.open(dest).read_blob(Layout.open(dest).resolve(tag="arm"))
    )
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]
    assert index["manifests"][0]["platform"]["variant"] == "v8"


def test_unknown_platform_is_reported(corpus_dir, tmp_path, capsys):
    status = main(
        [
            "convert",
            "--platform",
            "linux/s390x",
            f"oci:{corpus_dir / 'multiarch'}:latest",
            f"oci:{tmp_path / 'o'}",
        ]
    )
    assert status == 1
    assert "no manifest for linux/s390x" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
