"""Every action, driven through the official SDKs against a live server.

Each test runs once per client flavour (Tea V3, Tea v1, core GET, core POST
form body); the SDKs sign, send and decode exactly as they do for the cloud.
"""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from artifactd.openapi.actions import ACTIONS
from tests.openapi.clients import (
    FLAVOURS,
    Caller,
    common_request,
    core_client,
    create_repository,
)
from tests.openapi.conftest import push

PRIORITY_FILE = base64.b64encode(b"/bin/sh\n/usr/lib/libc.so.6\n").decode()


@pytest.fixture(params=FLAVOURS)
def client(request, api) -> Caller:
    return Caller(request.param, api.endpoint, api.access_key_id, api.access_key_secret)


@pytest.fixture(scope="module")
def instance_id(api) -> str:
    caller = Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)
    return caller.call("ListInstance")["Instances"][0]["InstanceId"]


def ok(body: dict) -> dict:
    assert body["IsSuccess"] is True, body
    assert body["Code"] == "success"
    assert body["RequestId"]
    return body


def failed(body: dict, code: str) -> None:
    assert body["IsSuccess"] is False, body
    assert body["Code"] == code
    assert body["RequestId"]


def assert_documented_fields(action: str, body: dict) -> None:
    """Every field the reference documents (and the SDK reads) is present."""
    for field in ACTIONS[action].response:
        if field.name != "NextToken":
            assert field.name in body, f"{action} lacks {field.name}"


def test_instances(client, instance_id):
    listed = ok(client.call("ListInstance", PageNo=1, PageSize=10))
    assert listed["TotalCount"] == 1
    assert_documented_fields("ListInstance", listed)
    item = listed["Instances"][0]
    assert item["InstanceId"] == instance_id
    assert item["InstanceId"].startswith("cri-")
    assert item["CreateTime"].isdigit()  # a string in ListInstance

    got = ok(client.call("GetInstance", InstanceId=instance_id))
    assert_documented_fields("GetInstance", got)
    assert got["InstanceStatus"] == "RUNNING"
    assert isinstance(got["CreateTime"], int)
    assert got["CreateTime"] == int(item["CreateTime"])

    failed(client.call("GetInstance", InstanceId="cri-missing"), "INSTANCE_NOT_EXIST")


def test_namespaces_and_repositories(client, instance_id):
    ns = f"ns-{client.flavour}"
    failed(
        client.call("GetNamespace", InstanceId=instance_id, NamespaceName=ns),
        "NAMESPACE_NOT_EXIST",
    )
    ok(
        client.call(
            "CreateNamespace",
            InstanceId=instance_id,
            NamespaceName=ns,
            AutoCreateRepo=False,
            DefaultRepoType="PUBLIC",
            DefaultRepoConfiguration={"RepoType": "PUBLIC", "TagImmutability": False},
        )
    )
    failed(
        client.call("CreateNamespace", InstanceId=instance_id, NamespaceName=ns),
        "NAMESPACE_ALREADY_EXIST",
    )
    got = ok(client.call("GetNamespace", InstanceId=instance_id, NamespaceName=ns))
    assert_documented_fields("GetNamespace", got)
    assert got["NamespaceId"].startswith("crn-")
    assert (got["AutoCreateRepo"], got["DefaultRepoType"]) == (False, "PUBLIC")
    assert got["DefaultRepoConfiguration"]["RepoType"] == "PUBLIC"
    by_id = ok(
        client.call(
            "GetNamespace", InstanceId=instance_id, NamespaceId=got["NamespaceId"]
        )
    )
    assert by_id["NamespaceName"] == ns

    ok(
        client.call(
            "UpdateNamespace",
            InstanceId=instance_id,
            NamespaceName=ns,
            AutoCreateRepo=True,
        )
    )
    got = ok(client.call("GetNamespace", InstanceId=instance_id, NamespaceName=ns))
    assert (got["AutoCreateRepo"], got["DefaultRepoType"]) == (True, "PUBLIC")
    listed = ok(client.call("ListNamespace", InstanceId=instance_id, NamespaceName=ns))
    assert listed["TotalCount"] == "1"
    assert listed["Namespaces"][0]["NamespaceId"] == got["NamespaceId"]

    summary = "hello world *~/+&=:ü"
    created = ok(
        client.call(
            "CreateRepository",
            InstanceId=instance_id,
            RepoNamespaceName=ns,
            RepoName="app",
            RepoType="PRIVATE",
            Summary=summary,
            Detail="line1\nline2 (tab\t)",
        )
    )
    repo_id = created["RepoId"]
    assert repo_id.startswith("crr-")
    failed(
        client.call(
            "CreateRepository",
            InstanceId=instance_id,
            RepoNamespaceName=ns,
            RepoName="app",
            RepoType="PRIVATE",
            Summary="again",
        ),
        "REPO_ALREADY_EXIST",
    )
    failed(
        client.call(
            "CreateRepository",
            InstanceId=instance_id,
            RepoNamespaceName="no-such-ns",
            RepoName="app",
            RepoType="PRIVATE",
            Summary="x",
        ),
        "NAMESPACE_NOT_EXIST",
    )
    repo = ok(client.call("GetRepository", InstanceId=instance_id, RepoId=repo_id))
    assert_documented_fields("GetRepository", repo)
    assert (repo["Summary"], repo["Detail"]) == (summary, "line1\nline2 (tab\t)")
    by_name = ok(
        client.call(
            "GetRepository",
            InstanceId=instance_id,
            RepoNamespaceName=ns,
            RepoName="app",
        )
    )
    assert by_name["RepoId"] == repo_id

    ok(
        client.call(
            "UpdateRepository",
            InstanceId=instance_id,
            RepoId=repo_id,
            RepoType="PUBLIC",
            Summary="changed",
            TagImmutability=True,
        )
    )
    repo = ok(client.call("GetRepository", InstanceId=instance_id, RepoId=repo_id))
    assert (repo["RepoType"], repo["Summary"], repo["TagImmutability"]) == (
        "PUBLIC",
        "changed",
        True,
    )

    for name in ("app2", "app3"):
        ok(
            client.call(
                "CreateRepository",
                InstanceId=instance_id,
                RepoNamespaceName=ns,
                RepoName=name,
                RepoType="PRIVATE",
                Summary=name,
            )
        )
    first = ok(
        client.call(
            "ListRepository", InstanceId=instance_id, RepoNamespaceName=ns, MaxResults=2
        )
    )
    assert_documented_fields("ListRepository", first)
    assert first["TotalCount"] == "3"
    assert [r["RepoName"] for r in first["Repositories"]] == ["app", "app2"]
    second = ok(
        client.call(
            "ListRepository",
            InstanceId=instance_id,
            RepoNamespaceName=ns,
            MaxResults=2,
            NextToken=first["NextToken"],
        )
    )
    assert [r["RepoName"] for r in second["Repositories"]] == ["app3"]
    assert "NextToken" not in second
    paged = ok(
        client.call(
            "ListRepository",
            InstanceId=instance_id,
            RepoNamespaceName=ns,
            PageNo=2,
            PageSize=2,
        )
    )
    assert [r["RepoName"] for r in paged["Repositories"]] == ["app3"]

    failed(
        client.call("DeleteNamespace", InstanceId=instance_id, NamespaceName=ns),
        "NAMESPACE_NOT_EMPTY",
    )
    for name in ("app", "app2", "app3"):
        ok(
            client.call(
                "DeleteRepository",
                InstanceId=instance_id,
                RepoNamespaceName=ns,
                RepoName=name,
            )
        )
    failed(
        client.call("GetRepository", InstanceId=instance_id, RepoId=repo_id),
        "REPO_NOT_EXIST",
    )
    ok(client.call("DeleteNamespace", InstanceId=instance_id, NamespaceName=ns))
    failed(
        client.call("DeleteNamespace", InstanceId=instance_id, NamespaceName=ns),
        "NAMESPACE_NOT_EXIST",
    )


def test_tags_and_builds(client, instance_id, api, skopeo, corpus_dir):
    ns = f"img-{client.flavour}"
    repo_id = create_repository(client, instance_id, ns)
    layout = corpus_dir / "docker-v2"
    push(skopeo, layout, "uncompressed", api, f"{ns}/app:v1")
    push(skopeo, layout, "zstd", api, f"{ns}/app:v2")
    push(skopeo, corpus_dir / "multiarch", "latest", api, f"{ns}/app:multi")
    registry = httpx.Client(
        base_url=api.url, auth=(api.access_key_id, api.access_key_secret)
    )

    listed = ok(client.call("ListRepoTag", InstanceId=instance_id, RepoId=repo_id))
    assert_documented_fields("ListRepoTag", listed)
    assert listed["TotalCount"] == "3"
    images = {i["Tag"]: i for i in listed["Images"]}
    assert set(images) == {"v1", "v2", "multi"}
    manifest = registry.head(
        f"/v2/{ns}/app/manifests/v1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert images["v1"]["Digest"] == manifest.headers["docker-content-digest"][7:]
    assert images["v1"]["ImageSize"] > int(manifest.headers["content-length"])
    assert images["v1"]["ImageCreate"].isdigit()
    assert len(images["v1"]["ImageId"]) == 64

    tag = ok(
        client.call("GetRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v1")
    )
    assert_documented_fields("GetRepoTag", tag)
    assert tag["Digest"] == images["v1"]["Digest"]
    assert isinstance(tag["ImageCreate"], int)
    failed(
        client.call("GetRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="nope"),
        "TAG_NOT_EXIST",
    )

    # Builds: a rule, then a task for one tag, which takes the rule's priority.
    rule = ok(
        client.call(
            "CreateArtifactBuildRule",
            InstanceId=instance_id,
            ArtifactType="ACCELERATED_IMAGE",
            ScopeType="REPOSITORY",
            ScopeId=repo_id,
            Parameters={
                "ImageIndexOnly": False,
                "Priority": 3,
                "PriorityFile": PRIORITY_FILE,
            },
        )
    )
    rule_id = rule["BuildRuleId"]
    assert rule_id.startswith("crabr-")
    failed(
        client.call(
            "CreateArtifactBuildRule",
            InstanceId=instance_id,
            ArtifactType="ACCELERATED_IMAGE",
            ScopeType="REPOSITORY",
            ScopeId=repo_id,
        ),
        "ARTIFACT_BUILD_RULE_ALREADY_EXIST",
    )
    got = ok(
        client.call("GetArtifactBuildRule", InstanceId=instance_id, BuildRuleId=rule_id)
    )
    assert_documented_fields("GetArtifactBuildRule", got)
    assert got["Parameters"] == {
        "ImageIndexOnly": False,
        "Priority": 3,
        "PriorityFile": PRIORITY_FILE,
    }
    by_scope = ok(
        client.call(
            "GetArtifactBuildRule",
            InstanceId=instance_id,
            ArtifactType="ACCELERATED_IMAGE",
            ScopeType="REPOSITORY",
            ScopeId=repo_id,
        )
    )
    assert by_scope["BuildRuleId"] == rule_id
    ok(
        client.call(
            "UpdateArtifactBuildRule",
            InstanceId=instance_id,
            BuildRuleId=rule_id,
            Parameters={"Priority": 5},
        )
    )
    rules = ok(
        client.call("ListArtifactBuildRule", InstanceId=instance_id, ScopeId=repo_id)
    )
    assert rules["TotalCount"] == 1
    assert rules["BuildRules"][0]["Parameters"]["Priority"] == 5

    created = ok(
        client.call(
            "CreateArtifactBuildTask", InstanceId=instance_id, RepoId=repo_id, Tag="v1"
        )
    )
    task_id = created["BuildTaskId"]
    assert task_id.startswith("i2a-")
    failed(
        client.call(
            "CreateArtifactBuildTask",
            InstanceId=instance_id,
            RepoId=repo_id,
            Tag="gone",
        ),
        "TAG_NOT_EXIST",
    )
    task = ok(
        client.call("GetArtifactBuildTask", InstanceId=instance_id, BuildTaskId=task_id)
    )
    assert_documented_fields("GetArtifactBuildTask", task)
    assert task["TaskStatus"] == "PENDING"
    assert task["Priority"] == 5
    assert task["ArtifactBuildType"] == "IMAGE_TO_ACCELERATED_IMAGE"
    assert task["SourceArtifact"]["Version"] == "v1"
    assert task["TargetArtifact"]["Version"] == "v1_accelerated"
    assert task["SourceArtifact"]["RepoId"] == repo_id
    tasks = ok(
        client.call("ListArtifactBuildTask", InstanceId=instance_id, RepoId=repo_id)
    )
    assert tasks["TotalCount"] == 1
    assert tasks["BuildTasks"][0] == {
        k: v for k, v in task.items() if k not in ("RequestId", "Code", "IsSuccess")
    }

    ok(
        client.call(
            "CancelArtifactBuildTask", InstanceId=instance_id, BuildTaskId=task_id
        )
    )
    task = ok(
        client.call("GetArtifactBuildTask", InstanceId=instance_id, BuildTaskId=task_id)
    )
    assert task["TaskStatus"] == "CANCELED"
    assert task["EndTime"] >= int(time.time()) - 60
    failed(
        client.call(
            "CancelArtifactBuildTask", InstanceId=instance_id, BuildTaskId=task_id
        ),
        "ARTIFACT_BUILD_TASK_STATUS_INVALID",
    )
    logs = ok(
        client.call(
            "ListArtifactBuildTaskLog",
            InstanceId=instance_id,
            BuildTaskId=task_id,
            Page=1,
            PageSize=100,
        )
    )
    assert logs["TotalCount"] == 2
    assert [line["LineNumber"] for line in logs["BuildTaskLogs"]] == [1, 2]
    assert "canceled" in logs["BuildTaskLogs"][1]["Message"]
    failed(
        client.call(
            "GetArtifactBuildTask", InstanceId=instance_id, BuildTaskId="i2a-none"
        ),
        "ARTIFACT_BUILD_TASK_NOT_EXIST",
    )

    # Tags: immutable repositories keep theirs; deleting removes it upstream.
    ok(
        client.call(
            "UpdateRepository",
            InstanceId=instance_id,
            RepoId=repo_id,
            RepoType="PRIVATE",
            Summary="app",
            TagImmutability=True,
        )
    )
    failed(
        client.call("DeleteRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v2"),
        "TAG_IMMUTABLE",
    )
    ok(
        client.call(
            "UpdateRepository",
            InstanceId=instance_id,
            RepoId=repo_id,
            RepoType="PRIVATE",
            Summary="app",
            TagImmutability=False,
        )
    )
    ok(client.call("DeleteRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v2"))
    failed(
        client.call("GetRepoTag", InstanceId=instance_id, RepoId=repo_id, Tag="v2"),
        "TAG_NOT_EXIST",
    )
    remaining = registry.get(f"/v2/{ns}/app/tags/list").json()["tags"]
    assert sorted(remaining) == ["multi", "v1"]

    ok(
        client.call(
            "DeleteArtifactBuildRule", InstanceId=instance_id, BuildRuleId=rule_id
        )
    )
    failed(
        client.call(
            "GetArtifactBuildRule", InstanceId=instance_id, BuildRuleId=rule_id
        ),
        "ARTIFACT_BUILD_RULE_NOT_EXIST",
    )


def test_authorization_token(client, instance_id, api):
    from artifactd.store import keys
    from artifactd.store.db import open_data_dir

    before = int(time.time() * 1000)
    token = ok(
        client.call("GetAuthorizationToken", InstanceId=instance_id, ExpiresInHours=2)
    )
    assert_documented_fields("GetAuthorizationToken", token)
    assert token["TempUsername"] == api.access_key_id
    assert (
        before + 2 * 3600_000 - 5000
        <= token["ExpireTime"]
        <= before + 2 * 3600_000 + 5000
    )
    with open_data_dir(api.data_dir)() as session:
        assert keys.check_registry_password(
            session, token["TempUsername"], token["AuthorizationToken"]
        )
        assert not keys.check_registry_password(
            session, token["TempUsername"], token["AuthorizationToken"] + "0"
        )


def test_xml_format(api, instance_id):
    """The core SDK can ask for XML; the answer parses and carries the fields."""
    acs = core_client(api.access_key_id, api.access_key_secret)
    request = common_request(
        api.endpoint, "GetInstance", {"InstanceId": instance_id}, False
    )
    request.set_accept_format("XML")
    status, _headers, body, _error = acs._implementation_of_do_action(request)
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == "GetInstanceResponse"
    assert root.findtext("InstanceId") == instance_id
    assert root.findtext("IsSuccess") == "true"
    assert root.findtext("RequestId")

    request = common_request(
        api.endpoint,
        "GetRepository",
        {"InstanceId": instance_id, "RepoId": "crr-x"},
        False,
    )
    request.set_accept_format("XML")
    status, _headers, body, _error = acs._implementation_of_do_action(request)
    root = ET.fromstring(body)
    assert (status, root.findtext("Code"), root.findtext("IsSuccess")) == (
        200,
        "REPO_NOT_EXIST",
        "false",
    )
