"""``artifactd keys`` and the key made at first start."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException

from tests.conftest import ROOT
from tests.openapi.clients import Caller
from tests.openapi.conftest import free_port, start_api, wait_http


def keys_cli(data_dir, *args: str, env=None) -> subprocess.CompletedProcess:
    where = ["--data-dir", str(data_dir)] if data_dir is not None else []
    return subprocess.run(
        [sys.executable, "-m", "artifactd.cli", "keys", *where, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_create_list_delete(tmp_path):
    data_dir = tmp_path / "data"
    created = keys_cli(data_dir, "create", "--description", "ci pipeline")
    assert created.returncode == 0, created.stderr
    key_id = re.search(r"AccessKeyId:\s+(\S+)", created.stdout).group(1)
    secret = re.search(r"AccessKeySecret:\s+(\S+)", created.stdout).group(1)
    assert key_id.startswith("LTAI") and len(secret) >= 24

    listed = keys_cli(data_dir, "list")
    assert key_id in listed.stdout and "ci pipeline" in listed.stdout
    assert secret not in listed.stdout  # shown once, at creation only

    # Readable by the service user only: the store holds the secrets.
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "artifactd.db").stat().st_mode) == 0o600

    deleted = keys_cli(data_dir, "delete", key_id)
    assert deleted.returncode == 0
    assert key_id not in keys_cli(data_dir, "list").stdout
    again = keys_cli(data_dir, "delete", key_id)
    assert again.returncode == 1 and key_id in again.stderr


def test_first_start_prints_a_working_key_once(tmp_path):
    server = start_api(
        tmp_path, None, "--workers", "0", settings={"api_key_cache_seconds": "0"}
    )
    try:
        assert "alibabacloud_cr20181201" in server.first_output
        assert server.access_key_secret in server.first_output
        caller = Caller(
            "core-get", server.endpoint, server.access_key_id, server.access_key_secret
        )
        assert caller.call("ListInstance")["TotalCount"] == 1

        # A key made with the CLI works at once; a deleted one stops working.
        created = keys_cli(tmp_path, "create")
        key_id = re.search(r"AccessKeyId:\s+(\S+)", created.stdout).group(1)
        secret = re.search(r"AccessKeySecret:\s+(\S+)", created.stdout).group(1)
        other = Caller("core-get", server.endpoint, key_id, secret)
        assert other.call("ListInstance")["IsSuccess"] is True
        keys_cli(tmp_path, "delete", key_id)
        with pytest.raises(ServerException) as info:
            other.call("ListInstance")
        assert info.value.get_error_code() == "InvalidAccessKeyId.NotFound"
    finally:
        server.stop()

    # The second start finds keys and prints none.
    port = free_port()
    serve = [sys.executable, "-m", "artifactd.cli", "serve", "--workers", "0"]
    again = subprocess.Popen(
        [*serve, "--data-dir", str(tmp_path), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The start message is printed before the server answers.
        wait_http(f"http://127.0.0.1:{port}/healthz")
    finally:
        again.terminate()
        output = again.communicate(timeout=30)[0]
    assert "artifactd: registry at" in output
    assert "AccessKeySecret" not in output


def test_keys_open_the_store_serve_uses(tmp_path):
    """Without --data-dir, ``keys`` finds the store where ``serve`` keeps it:
    XDG_DATA_HOME, then the environment and a config file."""
    xdg = tmp_path / "xdg"
    env = {**os.environ, "XDG_DATA_HOME": str(xdg)}
    env.pop("ARTIFACTD_DATA_DIR", None)
    created = keys_cli(None, "create", "--description", "xdg", env=env)
    assert created.returncode == 0, created.stderr
    assert (xdg / "artifactd" / "artifactd.db").exists()

    config = tmp_path / "artifactd.toml"
    config.write_text(f'data_dir = "{tmp_path / "configured"}"\n')
    by_config = keys_cli(None, "--config", str(config), "create", env=env)
    assert by_config.returncode == 0, by_config.stderr
    assert (tmp_path / "configured" / "artifactd.db").exists()
    listed = keys_cli(None, "--config", str(config), "list", env=env).stdout
    assert "xdg" not in listed and "LTAI" in listed

    bad = keys_cli(None, "--config", str(tmp_path / "missing.toml"), "list", env=env)
    assert bad.returncode != 0 and "missing.toml" in bad.stderr
