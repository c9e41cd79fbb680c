"""From push to accelerated image: ``artifactd serve`` timed per corpus image.

    .venv/bin/python benchmarks/build_bench.py [--images debian,pyapp,...]
        [--rounds N] [--json FILE]

Each round starts a fresh ``artifactd serve`` on loopback with its own data
directory (so no conversion is cached from an earlier round), creates one
repository per image with a build rule through the official SDK, and pushes
the images one at a time with ``skopeo copy``. For each image it reports:

- push: the ``skopeo copy`` wall time;
- to SUCCESS: from the end of the push (the manifest goes last, and its push
  queues the task) until ``GetArtifactBuildTask`` answers ``SUCCESS``,
  polled every 50 ms;
- converting: the build's own time spent converting layers and pushing the
  results (from the task's log), and its share of "to SUCCESS";
- the accelerated image's size against the source's (``Size`` of the task's
  ``SourceArtifact`` and ``TargetArtifact``, all platforms).

Medians over the rounds. The corpus comes from ``$OCI_CORPUS_DIR`` (default
``~/.cache/oci-corpus``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from alibabacloud_cr20181201 import models
from alibabacloud_cr20181201.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from darabonba.runtime import RuntimeOptions

ROOT = Path(__file__).resolve().parent.parent
KEY_ID, KEY_SECRET = "LTAIbenchmark0000002", "benchmark-secret-0123456789"
#: image name -> (layout folder, tag)
IMAGES = {
    "debian": ("debian", "bookworm"),
    "pyapp": ("pyapp", "latest"),
    "edge": ("edge", "latest"),
    "multiarch": ("multiarch", "latest"),
    "docker-v2": ("docker-v2", "uncompressed"),
}
_CONVERTING = re.compile(r"\(([\d.]+)s converting and pushing\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTD_")}
        env.update(
            ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID=KEY_ID,
            ARTIFACTD_BOOTSTRAP_ACCESS_KEY_SECRET=KEY_SECRET,
            ARTIFACTD_LOG_LEVEL="warning",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "artifactd.cli", "serve"]
            + ["--data-dir", str(work / "data"), "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://{self.endpoint}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        config = Config(
            access_key_id=KEY_ID,
            access_key_secret=KEY_SECRET,
            endpoint=self.endpoint,
            protocol="http",
        )
        self.client = Client(config)
        listed = self.client.list_instance(models.ListInstanceRequest())
        self.instance_id = listed.body.instances[0].instance_id

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def repository_with_rule(self, namespace: str) -> str:
        self.client.create_namespace(
            models.CreateNamespaceRequest(
                instance_id=self.instance_id, namespace_name=namespace
            )
        )
        repo = self.client.create_repository(
            models.CreateRepositoryRequest(
                instance_id=self.instance_id,
                repo_namespace_name=namespace,
                repo_name="image",
                repo_type="PRIVATE",
                summary="benchmark",
            )
        )
        repo_id = repo.body.repo_id
        self.client.create_artifact_build_rule(
            models.CreateArtifactBuildRuleRequest(
                instance_id=self.instance_id,
                artifact_type="ACCELERATED_IMAGE",
                scope_type="REPOSITORY",
                scope_id=repo_id,
                parameters={"ImageIndexOnly": False, "Priority": 3},
            )
        )
        return repo_id

    def task_id(self, repo_id: str) -> str:
        """The one task of the repository, as listed by the extension action."""
        while True:
            body = self.client.call_api(*_list_tasks(self.instance_id, repo_id))
            tasks = body["body"]["BuildTasks"]
            if tasks:
                return tasks[0]["BuildTaskId"]
            time.sleep(0.05)

    def wait(self, task_id: str) -> models.GetArtifactBuildTaskResponseBody:
        request = models.GetArtifactBuildTaskRequest(
            instance_id=self.instance_id, build_task_id=task_id
        )
        while True:
            body = self.client.get_artifact_build_task(request).body
            if body.task_status in ("SUCCESS", "FAILED", "CANCELED"):
                return body
            time.sleep(0.05)

    def converting_seconds(self, task_id: str) -> float:
        request = models.ListArtifactBuildTaskLogRequest(
            instance_id=self.instance_id, build_task_id=task_id, page=1, page_size=100
        )
        for line in self.client.list_artifact_build_task_log(
            request
        ).body.build_task_logs:
            found = _CONVERTING.search(line.message)
            if found:
                return float(found.group(1))
        raise SystemExit(f"task {task_id} logged no conversion time")


def _list_tasks(instance_id: str, repo_id: str):
    """``call_api`` arguments for ListArtifactBuildTask, which the SDK lacks."""
    params = utils_models.Params(
        action="ListArtifactBuildTask",
        version="2018-12-01",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )
    query = {"InstanceId": instance_id, "RepoId": repo_id}
    request = utils_models.OpenApiRequest(query=Utils.query(query))
    return params, request, RuntimeOptions()


def push(layout: Path, tag: str, destination: str) -> None:
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--all", "--preserve-digests"]
        + ["--dest-tls-verify=false", "--dest-creds", f"{KEY_ID}:{KEY_SECRET}"]
        + [f"oci:{layout}:{tag}", f"docker://{destination}"],
        check=True,
    )


def run_round(corpus: Path, names: list[str]) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="build-bench-") as work:
        server = Server(Path(work))
        try:
            for name in names:
                folder, tag = IMAGES[name]
                repo_id = server.repository_with_rule(name)
                started = time.monotonic()
                push(corpus / folder, tag, f"{server.endpoint}/{name}/image:{tag}")
                pushed = time.monotonic()
                task_id = server.task_id(repo_id)
                task = server.wait(task_id)
                done = time.monotonic()
                if task.task_status != "SUCCESS":
                    raise SystemExit(f"{name}: the build ended {task.task_status}")
                results[name] = {
                    "push_s": pushed - started,
                    "to_success_s": done - pushed,
                    "converting_s": server.converting_seconds(task_id),
                    "source_bytes": task.source_artifact.size,
                    "target_bytes": task.target_artifact.size,
                }
        finally:
            server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    parser.add_argument(
        "--corpus",
        type=Path,
        default=Path(os.environ.get("OCI_CORPUS_DIR", cache / "oci-corpus")),
    )
    parser.add_argument("--images", default=",".join(IMAGES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the medians here too")
    args = parser.parse_args()
    names = [n for n in args.images.split(",") if n]
    unknown = set(names) - set(IMAGES)
    if unknown:
        raise SystemExit(f"unknown images: {', '.join(sorted(unknown))}")

    rounds = [run_round(args.corpus, names) for _ in range(args.rounds)]
    print(f"cpus={os.cpu_count()} rounds={args.rounds} (median)")
    print(
        f"{'image':<10} {'push s':>7} {'to SUCCESS s':>13} {'converting s':>13} "
        f"{'share':>6} {'source MB':>10} {'accel MB':>9} {'size':>7}"
    )
    medians = {}
    for name in names:
        row = {
            key: statistics.median(r[name][key] for r in rounds)
            for key in rounds[0][name]
        }
        medians[name] = row
        share = row["converting_s"] / row["to_success_s"]
        growth = row["target_bytes"] / row["source_bytes"] - 1
        print(
            f"{name:<10} {row['push_s']:>7.2f} {row['to_success_s']:>13.2f} "
            f"{row['converting_s']:>13.2f} {share:>6.0%} "
            f"{row['source_bytes'] / 1e6:>10.2f} {row['target_bytes'] / 1e6:>9.2f} "
            f"{growth:>+7.1%}"
        )
    if args.json:
        args.json.write_text(json.dumps(medians, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
