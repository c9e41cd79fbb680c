"""The build pipeline over OCI layouts: logs for people, summaries, cancel."""

from __future__ import annotations

import threading

import pytest

from artifactd.builds.pipeline import BuildRequest, run_build
from artifactd.errors import ConversionCanceled, LayoutError
from artifactd.oci.layout import Layout, LayoutSink, LayoutSource
from tests.formats.conftest import image_manifests


def test_build_logs_each_layer_and_summarises(corpus_dir, tmp_path):
    lines: list[str] = []
    sink = LayoutSink(tmp_path / "out")
    request = BuildRequest("library/pyapp", "latest", "latest_accelerated")
    outcome = run_build(
        request,
        LayoutSource(Layout.open(corpus_dir / "pyapp")),
        sink,
        lines.append,
        work_dir=str(sink.work_dir),
    )
    sink.commit()

    source = image_manifests(Layout.open(corpus_dir / "pyapp"), "latest")[0]
    assert outcome.source.layers == outcome.target.layers == 4
    assert outcome.source.size == sum(layer.size for layer in source.layers)
    assert 0.9 < outcome.target.size / outcome.source.size < 1.2
    assert lines[0].startswith("Pulling library/pyapp:latest")
    for layer in source.layers:
        assert any(
            layer.digest in line and "converted to eStargz" in line for line in lines
        )
    assert any(
        "Pushed and tagged library/pyapp:latest_accelerated" in line for line in lines
    )
    assert lines[-1].startswith("Build succeeded in ")
    target = Layout.open(tmp_path / "out").resolve(tag="latest_accelerated")
    assert target.digest == outcome.target.digest


def test_index_build_names_its_platforms(corpus_dir, tmp_path):
    lines: list[str] = []
    sink = LayoutSink(tmp_path / "out")
    outcome = run_build(
        BuildRequest("m/multi", "latest", "latest_accelerated"),
        LayoutSource(Layout.open(corpus_dir / "multiarch")),
        sink,
        lines.append,
        work_dir=str(sink.work_dir),
    )
    assert outcome.target.layers == 2
    assert "platforms linux/amd64, linux/arm64/v8" in lines[1]


def test_canceled_build_writes_no_tag(corpus_dir, tmp_path):
    cancel = threading.Event()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith("Source "):
            cancel.set()

    sink = LayoutSink(tmp_path / "out")
    with pytest.raises(ConversionCanceled):
        run_build(
            BuildRequest("d/debian", "bookworm", "bookworm_accelerated"),
            LayoutSource(Layout.open(corpus_dir / "debian")),
            sink,
            log,
            cancel=cancel,
            work_dir=str(sink.work_dir),
        )
    sink.abort()
    assert lines[-1] == "Canceled; d/debian:bookworm_accelerated was not written"
    assert not (tmp_path / "out").exists()


def test_missing_source_tag_fails(corpus_dir, tmp_path):
    sink = LayoutSink(tmp_path / "out")
    with pytest.raises(LayoutError, match="no tag .nope."):
        run_build(
            BuildRequest("d/debian", "nope", "nope_accelerated"),
            LayoutSource(Layout.open(corpus_dir / "debian")),
            sink,
            lambda _: None,
        )
    sink.abort()
