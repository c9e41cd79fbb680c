"""Push events to finished builds: triggers, the service and the pool together."""

from __future__ import annotations

import base64
import json
import subprocess

from artifactd.builds.triggers import ManifestPushed
from artifactd.oci.layout import Layout, blob_path
from artifactd.store import builds
from tests.formats.conftest import image_manifests


def push_event(world, name: str, tag: str) -> ManifestPushed:
    desc = Layout.open(world.root / "repos" / name).resolve(tag=tag)
    return ManifestPushed(name, tag, desc.digest, desc.media_type)


def test_a_push_with_a_rule_builds_the_accelerated_tag(world, corpus_dir):
    repo_id = world.add_repository("apps/multi", corpus_dir / "multiarch")
    world.add_rule(repo_id, priority=3)
    task_id = world.trigger.on_push(push_event(world, "apps/multi", "latest"))
    task = world.wait(task_id)

    logs = world.logs(task_id)
    assert task.status == builds.SUCCESS, logs
    layout = Layout.open(world.root / "repos" / "apps/multi")
    assert layout.resolve(tag="latest_accelerated").digest == task.target_digest
    assert (task.source_layers, task.target_layers) == (2, 2)
    assert task.start_time and task.end_time >= task.start_time
    for manifest in image_manifests(layout, "latest"):
        assert any(manifest.layers[0].digest in line for line in logs)
    assert logs[-1].startswith("Build succeeded")
    scraped = world.metrics.render().decode()
    assert 'artifactd_builds_finished_total{status="SUCCESS"} 1.0' in scraped
    assert 'artifactd_build_tasks{status="SUCCESS"} 1.0' in scraped
    assert "artifactd_layers_converted_total 2.0" in scraped


def test_a_repush_of_the_same_digest_reuses_the_result(world, corpus_dir):
    repo_id = world.add_repository("apps/multi", corpus_dir / "multiarch")
    world.add_rule(repo_id)
    first = world.wait(world.trigger.on_push(push_event(world, "apps/multi", "latest")))
    again_id = world.trigger.on_push(push_event(world, "apps/multi", "latest"))
    again = world.task(again_id)
    assert again.status == builds.SUCCESS
    assert again.target_digest == first.target_digest
    assert f"Reused the result of task {first.id}" in world.logs(again_id)[-1]


def test_target_tags_and_unruled_repositories_never_trigger(world, corpus_dir):
    repo_id = world.add_repository("apps/multi", corpus_dir / "multiarch")
    world.add_repository("apps/other", corpus_dir / "multiarch")
    assert world.trigger.on_push(push_event(world, "apps/other", "latest")) is None
    world.add_rule(repo_id)
    event = push_event(world, "apps/multi", "latest")
    target = ManifestPushed(
        event.repository, "latest_accelerated", event.digest, event.media_type
    )
    assert world.trigger.on_push(target) is None


def test_a_corrupt_layer_fails_its_task_and_the_next_push_builds(world, corpus_dir):
    repo_id = world.add_repository("apps/edge", corpus_dir / "edge")
    world.add_rule(repo_id)
    layout = Layout.open(world.root / "repos" / "apps/edge")
    [manifest] = image_manifests(layout, "latest")
    layer = blob_path(layout.root, manifest.layers[1].digest)
    good = layer.read_bytes()
    layer.write_bytes(good[: len(good) // 2])  # truncated in storage

    failed = world.wait(world.trigger.on_push(push_event(world, "apps/edge", "latest")))
    assert failed.status == builds.FAILED
    reason = world.logs(failed.id)[-1]
    assert reason.startswith("Build failed: layer " + manifest.layers[1].digest)
    assert "latest_accelerated" not in layout.tags()

    layer.write_bytes(good)
    rebuilt = world.wait(
        world.trigger.on_push(push_event(world, "apps/edge", "latest"))
    )
    assert rebuilt.status == builds.SUCCESS, world.logs(rebuilt.id)


def test_a_push_during_a_build_supersedes_it(world, corpus_dir):
    repo_id = world.add_repository("base/debian", corpus_dir / "debian")
    world.add_rule(repo_id)
    first_id = world.trigger.on_push(push_event(world, "base/debian", "bookworm"))
    second_id = world.trigger.on_push(push_event(world, "base/debian", "bookworm"))
    first = world.wait(first_id)
    assert first.status == builds.CANCELED
    assert any(
        "Superseded by task " + second_id in line for line in world.logs(first_id)
    )
    assert world.wait(second_id).status == builds.SUCCESS


def test_priority_file_orders_the_layer(world, corpus_dir, estargz_ref):
    repo_id = world.add_repository("base/debian", corpus_dir / "debian")
    listing = base64.b64encode(b"/etc/os-release\n/usr/bin/bash\n").decode()
    world.add_rule(repo_id, priority_file=listing)
    task = world.wait(
        world.trigger.on_push(push_event(world, "base/debian", "bookworm"))
    )
    assert task.status == builds.SUCCESS, world.logs(task.id)
    layout = Layout.open(world.root / "repos" / "base/debian")
    [manifest] = image_manifests(layout, "bookworm_accelerated")
    blob = blob_path(layout.root, manifest.layers[0].digest)
    names = [
        json.loads(line)["name"]
        for line in subprocess.run(
            [estargz_ref, "ls", str(blob)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    landmark = names.index(".prefetch.landmark")
    assert {"etc/os-release", "usr/bin/bash"} <= set(names[:landmark])
    assert any("Prioritizing 2 files" in line for line in world.logs(task.id))


def test_shared_base_layers_convert_once(world, corpus_dir):
    deb = world.add_repository("base/debian", corpus_dir / "debian")
    app = world.add_repository("apps/pyapp", corpus_dir / "pyapp")
    world.add_rule(deb)
    world.add_rule(app)
    first = world.wait(
        world.trigger.on_push(push_event(world, "base/debian", "bookworm"))
    )
    second = world.wait(
        world.trigger.on_push(push_event(world, "apps/pyapp", "latest"))
    )
    assert (first.status, second.status) == (builds.SUCCESS, builds.SUCCESS)
    logs = world.logs(second.id)
    assert sum("converted to eStargz" in line for line in logs) == 3
    assert sum("reused an earlier conversion" in line for line in logs) == 1
