"""``artifactd keys`` and the key made at first start."""

from __future__ import annotations

import re
import stat
import subprocess
import sys

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException

from tests.conftest import ROOT
from tests.openapi.clients import Caller
from tests.openapi.conftest import start_api


def keys_cli(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "artifactd.cli",
            "keys",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
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


def test_first_start_prints_a_working_key_once(tmp_path, registry):
    server = start_api(tmp_path, registry.url, "--secret-cache-seconds", "0")
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
    with pytest.raises(RuntimeError, match="no access key"):
        start_api(tmp_path, registry.url, "--exit-after-start")
