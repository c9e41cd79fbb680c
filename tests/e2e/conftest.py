"""``artifactd serve`` as a real process, driven the way users drive it.

Images go in with skopeo, build rules and tasks are handled through the
official SDK, and what comes out is pulled back with skopeo and judged by the
reference verifier.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from artifactd.oci import mediatypes as mt
from artifactd.oci.layout import Layout
from artifactd.oci.model import Descriptor, Manifest, canonical_json
from tests.conftest import SHARED
from tests.formats.conftest import (
    config_of,
    image_manifests,
    is_estargz_layer,
    reference_verify,
)
from tests.openapi.clients import Caller
from tests.openapi.conftest import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
KEY_ID = "LTAIe2ebuilds0000001"
KEY_SECRET = "e2e-secret-0123456789abcdef"
FINISHED = ("SUCCESS", "FAILED", "CANCELED")


@dataclass
class Serve:
    """One ``artifactd serve`` process over ``data_dir``; restartable."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def creds(self) -> str:
        return f"{KEY_ID}:{KEY_SECRET}"

    def start(self) -> Serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTD_")}
        env.update(
            ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID=KEY_ID,
            ARTIFACTD_BOOTSTRAP_ACCESS_KEY_SECRET=KEY_SECRET,
            ARTIFACTD_LOG_LEVEL="warning",
            PYTHONUNBUFFERED="1",
            **self.env,
        )
        command = [sys.executable, "-m", "artifactd.cli", "serve"]
        command += ["--data-dir", str(self.data_dir), "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        wait_http(f"http://{self.endpoint}/healthz")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def caller(self) -> Caller:
        return Caller("tea-v3", self.endpoint, KEY_ID, KEY_SECRET)

    def healthy(self) -> bool:
        return httpx.get(f"http://{self.endpoint}/healthz").json() == {"status": "ok"}

    def has_tag(self, repository: str, tag: str) -> bool:
        response = httpx.head(
            f"http://{self.endpoint}/v2/{repository}/manifests/{tag}",
            auth=(KEY_ID, KEY_SECRET),
            headers={"Accept": ", ".join(mt.MANIFEST_TYPES | mt.INDEX_TYPES)},
        )
        assert response.status_code in (200, 404), response.text
        return response.status_code == 200


@pytest.fixture
def serve(tmp_path: Path):
    server = Serve(tmp_path / "data").start()
    try:
        yield server
    finally:
        server.stop()


class Api:
    """SDK calls with the instance id filled in, answers checked."""

    def __init__(self, server: Serve) -> None:
        self.caller = server.caller()
        self.instance_id = self.call("ListInstance")["Instances"][0]["InstanceId"]

    def call(self, action: str, **params) -> dict:
        if action != "ListInstance":
            params.setdefault("InstanceId", self.instance_id)
        body = self.caller.call(action, **params)
        assert body.get("IsSuccess") is not False, body
        return body

    def repository(self, namespace: str, name: str) -> str:
        self.call("CreateNamespace", NamespaceName=namespace)
        created = self.call(
            "CreateRepository",
            RepoNamespaceName=namespace,
            RepoName=name,
            RepoType="PRIVATE",
            Summary=name,
        )
        return created["RepoId"]

    def rule(self, scope_id: str, scope_type: str = "REPOSITORY", **params) -> str:
        created = self.call(
            "CreateArtifactBuildRule",
            ArtifactType="ACCELERATED_IMAGE",
            ScopeType=scope_type,
            ScopeId=scope_id,
            Parameters={"ImageIndexOnly": False, **params},
        )
        return created["BuildRuleId"]

    def task_for(self, repo_id: str, tag: str, seconds: float = 30) -> str:
        """The newest task building ``tag`` (queued by a push)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            listed = self.call("ListArtifactBuildTask", RepoId=repo_id, PageSize=100)
            for task in listed["BuildTasks"]:
                if task["SourceArtifact"]["Version"] == tag:
                    return task["BuildTaskId"]
            time.sleep(0.2)
        raise AssertionError(f"no build task for {tag} after {seconds}s")

    def task(self, task_id: str) -> dict:
        return self.call("GetArtifactBuildTask", BuildTaskId=task_id)

    def wait(self, task_id: str, statuses=FINISHED, seconds: float = 300) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            task = self.task(task_id)
            if task["TaskStatus"] in statuses:
                return task
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} is still {task['TaskStatus']}")

    def logs(self, task_id: str) -> list[str]:
        lines: list[str] = []
        page = 1
        while True:
            body = self.call(
                "ListArtifactBuildTaskLog", BuildTaskId=task_id, Page=page, PageSize=100
            )
            lines += [line["Message"] for line in body["BuildTaskLogs"]]
            if len(lines) >= body["TotalCount"] or not body["BuildTaskLogs"]:
                return lines
            page += 1


def skopeo_copy(skopeo: str, server: Serve, source: str, destination: str) -> None:
    """``skopeo copy --all --preserve-digests`` with the server's credentials."""
    flags = []
    for reference, side in ((source, "src"), (destination, "dest")):
        if reference.startswith(f"docker://{server.endpoint}/"):
            flags += [f"--{side}-tls-verify=false", f"--{side}-creds", server.creds]
    subprocess.run(
        [skopeo, "copy", "--quiet", "--all", "--preserve-digests", *flags]
        + [source, destination],
        check=True,
        capture_output=True,
        timeout=300,
    )


def push(skopeo: str, server: Serve, layout: Path, tag: str, destination: str) -> None:
    """One tag of a layout to ``destination`` (``repo:tag``) in the server."""
    target = f"docker://{server.endpoint}/{destination}"
    skopeo_copy(skopeo, server, f"oci:{layout}:{tag}", target)


def pull(skopeo: str, server: Serve, source: str, out: Path, tag: str) -> Layout:
    """``source`` (``repo:tag``) from the server into an OCI layout at ``out``."""
    origin = f"docker://{server.endpoint}/{source}"
    skopeo_copy(skopeo, server, origin, f"oci:{out}:{tag}")
    return Layout.open(out)


def push_layout(server: Serve, layout: Path, repository: str) -> None:
    """Every tag of a layout, Docker-typed ones included (the corpus's push.sh)."""
    push_sh = SHARED / "corpus" / "push.sh"
    subprocess.run(
        ["bash", str(push_sh), str(layout), server.endpoint, repository]
        + ["--", "--dest-creds", server.creds],
        check=True,
        capture_output=True,
        timeout=300,
    )


def verify_accelerated(estargz_ref: str, layout: Layout, tag: str) -> list[dict]:
    """The reference verifier's report on every layer of every platform."""
    reports = []
    manifests = image_manifests(layout, tag)
    assert manifests
    for manifest in manifests:
        assert manifest.media_type == mt.OCI_MANIFEST
        diff_ids = config_of(layout, manifest).diff_ids
        for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
            assert is_estargz_layer(layer), layer
            blob = layout.root / "blobs" / "sha256" / layer.digest.split(":")[1]
            toc = layer.annotations[mt.ANNOTATION_TOC_DIGEST]
            reports.append(reference_verify(estargz_ref, blob, toc, diff_id))
    return reports


def reference_ls(estargz_ref: str, blob: Path) -> list[str]:
    """Entry names of an eStargz blob in blob order, as the reference lists them."""
    listed = subprocess.run(
        [estargz_ref, "ls", str(blob)], capture_output=True, text=True, check=True
    )
    names = []
    for line in listed.stdout.splitlines():
        entry = json.loads(line)
        if entry["type"] != "chunk":
            names.append(entry["name"])
    return names


def write_image(root: Path, tag: str, layers: list[tuple[str, bytes, bytes]]) -> Path:
    """An OCI layout tagged ``tag``: ``(media type, blob, uncompressed tar)``
    for each layer, the config's diff_ids from the tars."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer_descs = []
    diff_ids = []
    for media_type, blob, tar in layers:
        desc = Descriptor.for_bytes(media_type, blob)
        (blobs / desc.digest.split(":")[1]).write_bytes(blob)
        layer_descs.append(desc)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    config_desc = Descriptor.for_bytes(mt.OCI_CONFIG, config)
    (blobs / config_desc.digest.split(":")[1]).write_bytes(config)
    manifest = Manifest(mt.OCI_MANIFEST, config_desc, layer_descs).to_bytes()
    manifest_desc = Descriptor.for_bytes(
        mt.OCI_MANIFEST, manifest, annotations={mt.ANNOTATION_REF_NAME: tag}
    )
    (blobs / manifest_desc.digest.split(":")[1]).write_bytes(manifest)
    index = {"schemaVersion": 2, "manifests": [manifest_desc.to_json()]}
    (root / "index.json").write_text(json.dumps(index))
    return root
