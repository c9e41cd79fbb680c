"""Push an image, get an accelerated image: the whole service, end to end."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
import time

import httpx
import pytest

from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from tests.e2e.conftest import (
    Api,
    Serve,
    pull,
    push,
    push_layout,
    reference_ls,
    verify_accelerated,
    write_image,
)
from tests.formats.conftest import image_manifests

pytestmark = pytest.mark.slow

PRIORITIZED = ["/opt/pyapp/app.py", "/usr/bin/python3.11"]


def test_pyapp_push_builds_an_accelerated_image_the_reference_accepts(
    serve, corpus_dir, skopeo, estargz_ref, tmp_path
):
    api = Api(serve)
    repo_id = api.repository("apps", "pyapp")
    priority_file = base64.b64encode("\n".join(PRIORITIZED).encode()).decode()
    api.rule(repo_id, Priority=4, PriorityFile=priority_file)

    push(skopeo, serve, corpus_dir / "pyapp", "latest", "apps/pyapp:latest")
    task_id = api.task_for(repo_id, "latest")
    task = api.wait(task_id)
    logs = api.logs(task_id)

    assert task["TaskStatus"] == "SUCCESS", logs
    assert task["Priority"] == 4
    assert task["ArtifactBuildType"] == "IMAGE_TO_ACCELERATED_IMAGE"
    assert 0 < task["StartTime"] <= task["EndTime"]
    source, target = task["SourceArtifact"], task["TargetArtifact"]
    assert (source["Version"], target["Version"]) == ("latest", "latest_accelerated")
    assert source["RepoId"] == target["RepoId"] == repo_id
    assert source["LayerCount"] == target["LayerCount"] == 4
    assert 0.9 < target["Size"] / source["Size"] < 1.2

    source_layout = corpus_dir / "pyapp"
    source_layers = image_manifests(Layout.open(source_layout), "latest")[0].layers
    for layer in source_layers:
        assert any(layer.digest in line for line in logs), layer.digest
    assert logs[-1].startswith("Build succeeded")

    out = pull(skopeo, serve, "apps/pyapp:latest_accelerated", tmp_path / "out", "a")
    assert len(verify_accelerated(estargz_ref, out, "a")) == 4

    # Each prioritized file comes before the landmark of the layer holding it.
    placed = set()
    for layer in image_manifests(out, "a")[0].layers:
        blob = out.root / "blobs" / "sha256" / layer.digest.split(":")[1]
        names = reference_ls(estargz_ref, blob)
        if ".prefetch.landmark" not in names:
            continue
        landmark = names.index(".prefetch.landmark")
        for path in PRIORITIZED:
            name = path.lstrip("/")
            if name in names:
                assert names.index(name) < landmark, (name, names[: landmark + 1])
                placed.add(path)
    assert placed == set(PRIORITIZED)


def test_index_and_docker_media_types_build_under_a_namespace_rule(
    serve, corpus_dir, skopeo, estargz_ref, tmp_path
):
    api = Api(serve)
    repo_id = api.repository("mixed", "app")
    namespace = api.call("GetNamespace", NamespaceName="mixed")
    api.rule(namespace["NamespaceId"], scope_type="NAMESPACE")

    push(skopeo, serve, corpus_dir / "multiarch", "latest", "mixed/app:multi")
    push_layout(serve, corpus_dir / "docker-v2", "mixed/app")

    for tag, platforms in [
        ("multi", 2),
        ("gzip", 1),
        ("uncompressed", 1),
        ("zstd", 1),
    ]:
        task_id = api.task_for(repo_id, tag)
        task = api.wait(task_id)
        assert task["TaskStatus"] == "SUCCESS", (tag, api.logs(task_id))
        out = pull(skopeo, serve, f"mixed/app:{tag}_accelerated", tmp_path / tag, "a")
        manifests = image_manifests(out, "a")
        assert len(manifests) == platforms
        verify_accelerated(estargz_ref, out, "a")
    # The index build names its platforms in the log.
    multi_logs = api.logs(api.task_for(repo_id, "multi"))
    assert any("linux/amd64" in line and "linux/arm64" in line for line in multi_logs)


def test_images_sharing_a_base_convert_the_shared_layer_once(
    serve, corpus_dir, skopeo, estargz_ref, tmp_path
):
    api = Api(serve)
    base_repo = api.repository("base", "debian")
    app_repo = api.repository("team", "pyapp")
    api.rule(base_repo)
    api.rule(app_repo)

    push(skopeo, serve, corpus_dir / "debian", "bookworm", "base/debian:bookworm")
    base_task = api.wait(api.task_for(base_repo, "bookworm"))
    assert base_task["TaskStatus"] == "SUCCESS"
    push(skopeo, serve, corpus_dir / "pyapp", "latest", "team/pyapp:latest")
    app_task_id = api.task_for(app_repo, "latest")
    assert api.wait(app_task_id)["TaskStatus"] == "SUCCESS"

    debian = pull(
        skopeo, serve, "base/debian:bookworm_accelerated", tmp_path / "d", "a"
    )
    pyapp = pull(skopeo, serve, "team/pyapp:latest_accelerated", tmp_path / "p", "a")
    debian_layer = image_manifests(debian, "a")[0].layers[0]
    assert image_manifests(pyapp, "a")[0].layers[0].digest == debian_layer.digest
    app_logs = api.logs(app_task_id)
    reused = [line for line in app_logs if "reused an earlier conversion" in line]
    converted = [line for line in app_logs if "converted to eStargz" in line]
    assert len(reused) == 1 and debian_layer.digest in reused[0], app_logs
    assert len(converted) == 3, app_logs
    verify_accelerated(estargz_ref, pyapp, "a")

    metrics = httpx.get(f"http://{serve.endpoint}/metrics").text
    assert "artifactd_layers_converted_total 4.0" in metrics
    assert 'artifactd_build_tasks{status="SUCCESS"} 2.0' in metrics


def big_image(root, tag: str = "v1", megabytes: int = 160):
    """An image whose one (uncompressed) layer takes seconds to convert:
    hex text compresses by half, the slow case for deflate at level 9."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for number in range(megabytes // 16):
            data = os.urandom(8 << 20).hex().encode()
            info = tarfile.TarInfo(f"data/part-{number:02d}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layer = buf.getvalue()
    return write_image(root, tag, [(mt.OCI_LAYER, layer, layer)])


def wait_for_log(api: Api, task_id: str, text: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(text in line for line in api.logs(task_id)):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the log of {task_id}: {api.logs(task_id)}")


def start_big_build(api: Api, server: Serve, skopeo: str, tmp_path) -> str:
    """Push :func:`big_image` under a rule; its task id once it is converting."""
    repo_id = api.repository("big", "data")
    api.rule(repo_id)
    push(skopeo, server, big_image(tmp_path / "big"), "v1", "big/data:v1")
    task_id = api.task_for(repo_id, "v1")
    api.wait(task_id, statuses=("BUILDING",))
    wait_for_log(api, task_id, "Pulling")
    return task_id


def test_cancel_stops_a_running_build_and_leaves_no_target_tag(serve, skopeo, tmp_path):
    api = Api(serve)
    task_id = start_big_build(api, serve, skopeo, tmp_path)

    api.call("CancelArtifactBuildTask", BuildTaskId=task_id)
    canceled_at = time.monotonic()
    assert api.task(task_id)["TaskStatus"] == "CANCELED"
    wait_for_log(api, task_id, "Canceled", seconds=10)
    assert time.monotonic() - canceled_at < 2.0
    assert not any(line.startswith("Build succeeded") for line in api.logs(task_id))
    time.sleep(1)
    assert not serve.has_tag("big/data", "v1_accelerated")
    assert serve.has_tag("big/data", "v1")
    assert api.task(task_id)["TaskStatus"] == "CANCELED"


def test_a_build_killed_with_its_server_completes_after_restart(
    tmp_path, skopeo, estargz_ref
):
    server = Serve(tmp_path / "data", env={"ARTIFACTD_BUILD_LEASE_SECONDS": "5"})
    server.start()
    try:
        api = Api(server)
        task_id = start_big_build(api, server, skopeo, tmp_path)
        server.kill()

        server.start()
        api = Api(server)
        task = api.wait(task_id, seconds=180)
        logs = api.logs(task_id)
        assert task["TaskStatus"] == "SUCCESS", logs
        assert any("Resuming" in line for line in logs), logs
        out = pull(skopeo, server, "big/data:v1_accelerated", tmp_path / "out", "a")
        verify_accelerated(estargz_ref, out, "a")
    finally:
        server.stop()


def test_a_corrupt_layer_fails_its_task_and_the_next_push_builds(
    serve, skopeo, estargz_ref, tmp_path
):
    api = Api(serve)
    repo_id = api.repository("broken", "app")
    api.rule(repo_id)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = os.urandom(1 << 20).hex().encode()
        info = tarfile.TarInfo("srv/data.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    good_tar = buf.getvalue()
    good = gzip.compress(good_tar, mtime=0)
    truncated = good[: len(good) // 2]
    bad_layout = write_image(
        tmp_path / "bad", "v1", [(mt.OCI_LAYER_GZIP, truncated, good_tar)]
    )
    push(skopeo, serve, bad_layout, "v1", "broken/app:v1")
    failed_id = api.task_for(repo_id, "v1")
    failed = api.wait(failed_id)
    logs = api.logs(failed_id)
    bad_digest = "sha256:" + hashlib.sha256(truncated).hexdigest()

    assert failed["TaskStatus"] == "FAILED", logs
    assert logs[-1].startswith("Build failed"), logs
    assert bad_digest in logs[-1], logs
    assert "truncated" in logs[-1] or "corrupt" in logs[-1], logs
    assert not serve.has_tag("broken/app", "v1_accelerated")
    assert serve.healthy()

    good_layout = write_image(
        tmp_path / "good", "v1", [(mt.OCI_LAYER_GZIP, good, good_tar)]
    )
    push(skopeo, serve, good_layout, "v1", "broken/app:v1")
    deadline = time.monotonic() + 30
    while (next_id := api.task_for(repo_id, "v1")) == failed_id:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert api.wait(next_id)["TaskStatus"] == "SUCCESS", api.logs(next_id)
    out = pull(skopeo, serve, "broken/app:v1_accelerated", tmp_path / "out", "a")
    verify_accelerated(estargz_ref, out, "a")
