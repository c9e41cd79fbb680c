"""The app factory and ``artifactd serve``: first start, bootstrap keys, health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from artifactd.app import build_service
from artifactd.config import load_settings
from artifactd.store import keys
from tests.registry.conftest import free_port, wait_for


def test_first_start_creates_one_key_and_later_starts_keep_it(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"data_dir": str(tmp_path)})
    first = build_service(settings)
    assert first.new_key is not None and first.new_key.id.startswith("LTAI")
    second = build_service(settings)
    assert second.new_key is None
    with second.sessions() as session:
        assert [k.id for k in keys.list_keys(session)] == [first.new_key.id]
    assert (tmp_path / "token-signing.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "artifactd.db").stat().st_mode & 0o777 == 0o600


def test_bootstrap_key_from_environment_is_accepted(tmp_path: Path) -> None:
    env = {
        "ARTIFACTD_BOOTSTRAP_ACCESS_KEY_ID": "LTAIautomation000001",
        "ARTIFACTD_BOOTSTRAP_ACCESS_KEY_SECRET": "automation-secret-000",
    }
    service = build_service(
        load_settings(env=env, overrides={"data_dir": str(tmp_path)})
    )
    assert service.new_key is not None and service.new_key.id == "LTAIautomation000001"
    principal = service.registry.authorizer.credentials.verify(
        "LTAIautomation000001", "automation-secret-000"
    )
    assert principal is not None
    assert (
        service.registry.authorizer.credentials.verify("LTAIautomation000001", "x")
        is None
    )


def test_serve_prints_key_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTD_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
        challenge = httpx.get(f"http://127.0.0.1:{port}/v2/")
        assert challenge.status_code == 401
        assert "Bearer realm=" in challenge.headers["www-authenticate"]
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "AccessKeyId:     LTAI" in output
    assert f"docker login 127.0.0.1:{port}" in output
