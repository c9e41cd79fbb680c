"""Live registries on loopback: the embedded one (token auth, store-backed)
and Debian's docker-registry (CNCF Distribution) with htpasswd auth."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from artifactd.app import Service, build_service, create_app
from artifactd.config import load_settings
from tests.conftest import require_tool

KEY_ID = "LTAItestkey000000001"
KEY_SECRET = "test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


@dataclass
class LiveRegistry:
    host: str
    service: Service | None
    user: str
    password: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"

    @property
    def storage_root(self) -> Path:
        assert self.service is not None
        return self.service.registry.storage.root


class _ServerThread:
    def __init__(self, app, port: int) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "embedded registry did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_embedded(data_dir: Path, **overrides) -> tuple[Service, object]:
    port = free_port()
    settings = load_settings(
        env={
            "ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID": KEY_ID,
            "ARTIFACTD_BOOTSTRAP_ACCESS_KEY_SECRET": KEY_SECRET,
        },
        overrides={"data_dir": str(data_dir), "port": port, **overrides},
    )
    service = build_service(settings)
    return service, create_app(settings, service=service)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[LiveRegistry]:
    """A fresh embedded registry (token auth) with one access key."""
    service, app = start_embedded(tmp_path / "data")
    with _ServerThread(app, service.settings.port):
        yield LiveRegistry(
            f"127.0.0.1:{service.settings.port}", service, KEY_ID, KEY_SECRET
        )


@pytest.fixture
def distribution(tmp_path: Path) -> Iterator[LiveRegistry]:
    """CNCF Distribution 2.8 on loopback with htpasswd auth."""
    binary = require_tool("docker-registry")
    htpasswd = require_tool("htpasswd")
    root = tmp_path / "distribution"
    root.mkdir()
    line = subprocess.run(
        [htpasswd, "-Bbn", "tester", "tester-password"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (root / "htpasswd").write_text(line + "\n")
    port = free_port()
    (root / "config.yml").write_text(
        f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}/storage
  delete:
    enabled: true
auth:
  htpasswd:
    realm: test
    path: {root}/htpasswd
http:
  addr: 127.0.0.1:{port}
"""
    )
    process = subprocess.Popen(
        [binary, "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/v2/")
        yield LiveRegistry(f"127.0.0.1:{port}", None, "tester", "tester-password")
    finally:
        process.terminate()
        process.wait(10)
