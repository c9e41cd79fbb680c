"""Live servers for the API tests.

``start_api`` is the one place that decides how the API is started: as
``artifactd serve`` (registry, API and builds in one process; the default),
or the API alone over an external registry (CNCF Distribution here).
"""

from __future__ import annotations

import json
import os
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {seconds}s")


@dataclass
class ApiServer:
    """A running API process and the key printed at its first start."""

    process: subprocess.Popen
    port: int
    data_dir: Path
    access_key_id: str
    access_key_secret: str
    first_output: str

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def snapshot(self) -> dict[str, list]:
        """Every row of every table, read straight from the store, and every
        tag, link and manifest of the embedded registry's repositories."""
        database = self.data_dir / "artifactd.db"
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
                )
            ]
            state = {
                name: sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))
                for name in names
            }
        repositories = self.data_dir / "registry" / "repositories"
        state["registry"] = sorted(
            (str(path.relative_to(repositories)), path.read_bytes())
            for path in repositories.rglob("*")
            if path.is_file()
        )
        return state


def _read_first_key(process: subprocess.Popen, seconds: float) -> tuple[str, str, str]:
    """Collect stdout until the whole first-start message has been printed."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    text, key_id, secret = "", None, None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            break
        text += line
        if "AccessKeyId:" in line:
            key_id = line.split()[-1]
        if "AccessKeySecret:" in line and key_id:
            secret = line.split()[-1]
        if "artifactd keys create" in line and secret:
            return key_id, secret, text
    raise RuntimeError(f"the server printed no access key:\n{text}")


def start_api(
    data_dir: Path,
    registry_url: str | None = None,
    *extra: str,
    settings: dict[str, str] | None = None,
    key: tuple[str, str] | None = None,
) -> ApiServer:
    """Start the API as a real process on a free loopback port.

    Without a ``registry_url``, ``artifactd serve``: the embedded registry,
    the API and the build workers, with ``settings`` given as ``ARTIFACTD_*``
    variables. With one, the API alone, tags from that registry. A first
    start prints a key; to start again over the same ``data_dir``, pass that
    ``key`` (id, secret).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTD_")}
    for name, value in (settings or {}).items():
        env[f"ARTIFACTD_{name.upper()}"] = value
    if registry_url is None:
        command = [
            sys.executable,
            "-m",
            "artifactd.cli",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            *extra,
        ]
        env["ARTIFACTD_LOG_LEVEL"] = "warning"
    else:
        command = [
            sys.executable,
            "-m",
            "artifactd.openapi",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--registry",
            registry_url,
            *extra,
        ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        if key is None:
            key_id, secret, output = _read_first_key(process, 30)
        else:
            (key_id, secret), output = key, ""
        wait_http(f"http://127.0.0.1:{port}/-/ping")
    except Exception:
        process.kill()
        raise
    return ApiServer(process, port, data_dir, key_id, secret, output)


@dataclass
class Registry:
    url: str
    host: str


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """CNCF Distribution on loopback, deletes enabled, no auth."""
    binary = require_tool("docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(json.dumps(config))
    process = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/")
        yield Registry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(10)


def push(skopeo: str, layout: Path, tag: str, server: ApiServer, dest: str) -> None:
    """``skopeo copy --all`` into the server's embedded registry, with its key."""
    subprocess.run(
        [
            skopeo,
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{server.access_key_id}:{server.access_key_secret}",
            f"oci:{layout}:{tag}",
            f"docker://{server.endpoint}/{dest}",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """``artifactd serve`` with no build workers: tasks stay as the API left them."""
    server = start_api(tmp_path_factory.mktemp("api"), None, "--workers", "0")
    try:
        yield server
    finally:
        server.stop()
