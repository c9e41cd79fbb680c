"""The API alone over an external registry (CNCF Distribution): tags are
read from and deleted in that registry."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.openapi.clients import Caller, create_repository
from tests.openapi.conftest import Registry, start_api


@pytest.fixture
def external(tmp_path, registry: Registry):
    server = start_api(tmp_path, registry.url)
    try:
        yield server
    finally:
        server.stop()


def test_tags_come_from_the_external_registry(external, registry, skopeo, corpus_dir):
    caller = Caller(
        "tea-v3", external.endpoint, external.access_key_id, external.access_key_secret
    )
    instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    repo_id = create_repository(caller, instance_id, "ext")
    for tag in ("uncompressed", "zstd"):
        subprocess.run(
            [
                skopeo,
                "copy",
                "--preserve-digests",
                "--dest-tls-verify=false",
                f"oci:{corpus_dir / 'docker-v2'}:{tag}",
                f"docker://{registry.host}/ext/app:{tag}",
            ],
            check=True,
            capture_output=True,
        )
    listed = caller.call("ListRepoTag", InstanceId=instance_id, RepoId=repo_id)
    assert sorted(image["Tag"] for image in listed["Images"]) == [
        "uncompressed",
        "zstd",
    ]
    head = httpx.head(
        f"{registry.url}/v2/ext/app/manifests/uncompressed",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    tag = caller.call(
        "GetRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="uncompressed"
    )
    assert f"sha256:{tag['Digest']}" == head.headers["docker-content-digest"]

    deleted = caller.call(
        "DeleteRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="zstd"
    )
    assert deleted["IsSuccess"] is True
    tags = httpx.get(f"{registry.url}/v2/ext/app/tags/list").json()["tags"]
    assert tags == ["uncompressed"]
