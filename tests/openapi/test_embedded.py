"""The API mounted next to the embedded registry, as ``artifactd serve`` runs it.

A user logs in with GetAuthorizationToken's answer, pushes with skopeo, and
sees the tag through the API; deleting it through the API removes it from the
registry.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.openapi.clients import Caller, create_repository
from tests.openapi.conftest import start_api


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_api(tmp_path_factory.mktemp("embedded"), None)
    try:
        yield server
    finally:
        server.stop()


def test_login_push_and_tags_through_the_api(server, skopeo, corpus_dir):
    caller = Caller(
        "tea-v3", server.endpoint, server.access_key_id, server.access_key_secret
    )
    instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    repo_id = create_repository(caller, instance_id, "team")
    token = caller.call("GetAuthorizationToken", InstanceId=instance_id)
    creds = f"{token['TempUsername']}:{token['AuthorizationToken']}"

    push = subprocess.run(
        [
            skopeo,
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{corpus_dir / 'docker-v2'}:uncompressed",
            f"docker://{server.endpoint}/team/app:v1",
        ],
        capture_output=True,
        text=True,
    )
    assert push.returncode == 0, push.stderr
    denied = subprocess.run(
        [
            skopeo,
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{token['TempUsername']}:wrong",
            f"oci:{corpus_dir / 'docker-v2'}:uncompressed",
            f"docker://{server.endpoint}/team/app:v9",
        ],
        capture_output=True,
        text=True,
    )
    assert denied.returncode != 0

    listed = caller.call("ListRepoTag", InstanceId=instance_id, RepoId=repo_id)
    assert [image["Tag"] for image in listed["Images"]] == ["v1"]
    tag = caller.call("GetRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v1")
    assert len(tag["Digest"]) == 64 and tag["ImageSize"] > 0
    inspect = subprocess.run(
        [
            skopeo,
            "inspect",
            "--tls-verify=false",
            "--creds",
            creds,
            "--format",
            "{{.Digest}}",
            f"docker://{server.endpoint}/team/app:v1",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert inspect.stdout.strip() == f"sha256:{tag['Digest']}"

    deleted = caller.call(
        "DeleteRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v1"
    )
    assert deleted["IsSuccess"] is True
    listed = caller.call("ListRepoTag", InstanceId=instance_id, RepoId=repo_id)
    assert listed["TotalCount"] == "0"


def test_deleting_a_repository_deletes_its_images(server, skopeo, corpus_dir):
    caller = Caller(
        "core-post", server.endpoint, server.access_key_id, server.access_key_secret
    )
    instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    repo_id = create_repository(caller, instance_id, "gone")
    creds = f"{server.access_key_id}:{server.access_key_secret}"
    for tag in ("zstd", "uncompressed"):
        subprocess.run(
            [
                skopeo,
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                creds,
                f"oci:{corpus_dir / 'docker-v2'}:{tag}",
                f"docker://{server.endpoint}/gone/app:{tag}",
            ],
            check=True,
            capture_output=True,
        )
    assert (
        caller.call("ListRepoTag", InstanceId=instance_id, RepoId=repo_id)["TotalCount"]
        == "2"
    )
    deleted = caller.call("DeleteRepository", InstanceId=instance_id, RepoId=repo_id)
    assert deleted["IsSuccess"] is True
    inspect = subprocess.run(
        [
            skopeo,
            "inspect",
            "--tls-verify=false",
            "--creds",
            creds,
            f"docker://{server.endpoint}/gone/app:zstd",
        ],
        capture_output=True,
        text=True,
    )
    assert inspect.returncode != 0
