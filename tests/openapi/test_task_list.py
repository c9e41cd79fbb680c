"""ListArtifactBuildTask (an extension): filters, pages and order.

The server runs no build workers, so tasks stay PENDING until canceled.
"""

from __future__ import annotations

import time

import pytest

from tests.openapi.clients import Caller, create_repository
from tests.openapi.conftest import push


@pytest.fixture(scope="module")
def caller(api) -> Caller:
    return Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)


@pytest.fixture(scope="module")
def tasks(api, caller, skopeo, corpus_dir):
    """Three tasks of one repository, the first a second older than the rest,
    the second canceled: (instance, repo, [t1, t2, t3], boundary second)."""
    instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    repo_id = create_repository(caller, instance_id, "listed")
    for tag in ("v1", "v2", "v3"):
        push(skopeo, corpus_dir / "docker-v2", "uncompressed", api, f"listed/app:{tag}")

    def create(tag: str) -> str:
        body = caller.call(
            "CreateArtifactBuildTask", InstanceId=instance_id, RepoId=repo_id, Tag=tag
        )
        assert body["IsSuccess"] is True, body
        return body["BuildTaskId"]

    first = create("v1")
    time.sleep(1.1)
    boundary = int(time.time())
    ids = [first, create("v2"), create("v3")]
    caller.call("CancelArtifactBuildTask", InstanceId=instance_id, BuildTaskId=ids[1])
    return instance_id, repo_id, ids, boundary


def listed(caller: Caller, instance_id: str, **filters) -> tuple[list[str], int]:
    body = caller.call("ListArtifactBuildTask", InstanceId=instance_id, **filters)
    assert body["IsSuccess"] is True, body
    return [t["BuildTaskId"] for t in body["BuildTasks"]], body["TotalCount"]


def test_newest_first(caller, tasks):
    instance_id, repo_id, (t1, t2, t3), _ = tasks
    assert listed(caller, instance_id, RepoId=repo_id) == ([t3, t2, t1], 3)


def test_status_filter(caller, tasks):
    instance_id, repo_id, (t1, t2, t3), _ = tasks
    assert listed(caller, instance_id, RepoId=repo_id, TaskStatus="CANCELED") == (
        [t2],
        1,
    )
    assert listed(caller, instance_id, RepoId=repo_id, TaskStatus="PENDING") == (
        [t3, t1],
        2,
    )
    assert listed(caller, instance_id, RepoId=repo_id, TaskStatus="SUCCESS") == ([], 0)


def test_time_window(caller, tasks):
    instance_id, repo_id, (t1, t2, t3), boundary = tasks
    assert listed(caller, instance_id, RepoId=repo_id, StartTime=boundary) == (
        [t3, t2],
        2,
    )
    assert listed(caller, instance_id, RepoId=repo_id, EndTime=boundary) == ([t1], 1)
    later = boundary + 3600
    assert listed(caller, instance_id, RepoId=repo_id, StartTime=later) == ([], 0)


def test_pages_keep_the_total_and_do_not_overlap(caller, tasks):
    instance_id, repo_id, (t1, t2, t3), _ = tasks
    page = dict(RepoId=repo_id, PageSize=2)
    assert listed(caller, instance_id, PageNo=1, **page) == ([t3, t2], 3)
    assert listed(caller, instance_id, PageNo=2, **page) == ([t1], 3)
    assert listed(caller, instance_id, PageNo=3, **page) == ([], 3)


def test_other_repository_and_bad_filters(caller, tasks):
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    instance_id, _, (t1, t2, t3), _ = tasks
    assert listed(caller, instance_id, RepoId="crr-nosuchrepo") == ([], 0)
    ids, total = listed(caller, instance_id, PageSize=100)
    assert {t1, t2, t3} <= set(ids) and total == len(ids)
    with pytest.raises(ServerException) as info:
        caller.call("ListArtifactBuildTask", InstanceId=instance_id, TaskStatus="DONE")
    assert info.value.get_error_code() == "InvalidParameter"
    assert "TaskStatus" in info.value.get_error_msg()
