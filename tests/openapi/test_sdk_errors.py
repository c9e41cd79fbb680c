"""Refused calls, as the SDKs report them, and proof that they changed nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.utils import parameter_helper
from Tea.exceptions import TeaException

from tests.openapi.clients import FLAVOURS, Caller, create_repository
from tests.openapi.conftest import push, start_api


def error_code(exc: Exception) -> str:
    if isinstance(exc, ServerException):
        return exc.get_error_code()
    assert isinstance(exc, TeaException), type(exc)
    return exc.code


def error_status(exc: Exception) -> int:
    if isinstance(exc, ServerException):
        return exc.get_http_status()
    return exc.data["statusCode"]


@pytest.fixture(scope="module")
def instance_id(api) -> str:
    caller = Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)
    return caller.call("ListInstance")["Instances"][0]["InstanceId"]


def create_namespace(caller: Caller, instance_id: str, name: str) -> dict:
    return caller.call("CreateNamespace", InstanceId=instance_id, NamespaceName=name)


def refused(api, call) -> Exception:
    """Run ``call``; it must raise an SDK error and leave the store untouched."""
    before = api.snapshot()
    with pytest.raises((TeaException, ServerException)) as info:
        call()
    assert api.snapshot() == before
    return info.value


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_wrong_secret(api, instance_id, flavour):
    caller = Caller(flavour, api.endpoint, api.access_key_id, "not-the-secret")
    exc = refused(api, lambda: create_namespace(caller, instance_id, "wrong-secret"))
    assert error_code(exc) == "SignatureDoesNotMatch"
    assert error_status(exc) == 400


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unknown_access_key(api, instance_id, flavour):
    caller = Caller(flavour, api.endpoint, "LTAIunknownkey000000000", "x")
    exc = refused(api, lambda: create_namespace(caller, instance_id, "unknown-key"))
    assert error_code(exc) == "InvalidAccessKeyId.NotFound"
    assert error_status(exc) == 404


def stale_clock(monkeypatch, seconds: int) -> None:
    """Make both SDKs stamp requests with a clock ``seconds`` behind."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds))
    monkeypatch.setattr(Utils, "get_timestamp", staticmethod(lambda: stamp))
    monkeypatch.setattr(parameter_helper, "get_iso_8061_date", lambda: stamp)


def fixed_nonce(monkeypatch, nonce: str) -> None:
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: nonce))
    monkeypatch.setattr(parameter_helper, "get_uuid", lambda: nonce)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_expired_timestamp(api, instance_id, flavour, monkeypatch):
    caller = Caller(flavour, api.endpoint, api.access_key_id, api.access_key_secret)
    stale_clock(monkeypatch, 16 * 60)
    exc = refused(api, lambda: create_namespace(caller, instance_id, "too-late"))
    assert error_code(exc) == "InvalidTimeStamp.Expired"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_timestamp_inside_window_accepted(api, instance_id, flavour, monkeypatch):
    caller = Caller(flavour, api.endpoint, api.access_key_id, api.access_key_secret)
    stale_clock(monkeypatch, 14 * 60)
    assert caller.call("GetInstance", InstanceId=instance_id)["IsSuccess"] is True


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reused_nonce(api, instance_id, flavour, monkeypatch):
    caller = Caller(flavour, api.endpoint, api.access_key_id, api.access_key_secret)
    fixed_nonce(monkeypatch, f"{flavour}-0123456789abcdef0123456789abcdef")
    assert caller.call("GetInstance", InstanceId=instance_id)["IsSuccess"] is True
    exc = refused(api, lambda: create_namespace(caller, instance_id, "replayed"))
    assert error_code(exc) == "SignatureNonceUsed"


@pytest.fixture(scope="module")
def pushed_tag(api, instance_id, skopeo, corpus_dir) -> str:
    """A repository holding tag ``v1`` in the embedded registry; its RepoId."""
    caller = Caller("tea-v3", api.endpoint, api.access_key_id, api.access_key_secret)
    repo_id = create_repository(caller, instance_id, "kept")
    push(skopeo, corpus_dir / "docker-v2", "uncompressed", api, "kept/app:v1")
    return repo_id


@pytest.mark.parametrize("problem", ["wrong-secret", "expired", "replayed"])
def test_refused_tag_delete_leaves_the_tag(
    api, instance_id, pushed_tag, problem, monkeypatch
):
    secret = "not-the-secret" if problem == "wrong-secret" else api.access_key_secret
    caller = Caller("tea-v3", api.endpoint, api.access_key_id, secret)
    if problem == "expired":
        stale_clock(monkeypatch, 20 * 60)
    if problem == "replayed":
        fixed_nonce(monkeypatch, "kept-tag-0123456789abcdef0123456789ab")
        caller.call("GetInstance", InstanceId=instance_id)
    delete = lambda: caller.call(  # noqa: E731
        "DeleteRepoTag", InstanceId=instance_id, RepoId=pushed_tag, Tag="v1"
    )
    exc = refused(api, delete)
    assert (
        error_code(exc)
        == {
            "wrong-secret": "SignatureDoesNotMatch",
            "expired": "InvalidTimeStamp.Expired",
            "replayed": "SignatureNonceUsed",
        }[problem]
    )
    with httpx.Client(
        base_url=api.url, auth=(api.access_key_id, api.access_key_secret)
    ) as registry:
        assert registry.head("/v2/kept/app/manifests/v1").status_code == 200


def test_a_nonce_stays_used_across_a_restart(tmp_path, monkeypatch):
    server = start_api(tmp_path, None, "--workers", "0")
    key = (server.access_key_id, server.access_key_secret)
    fixed_nonce(monkeypatch, "restart-0123456789abcdef0123456789abcd")
    caller = Caller("core-get", server.endpoint, *key)
    try:
        instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    finally:
        server.stop()
    again = start_api(tmp_path, None, "--workers", "0", key=key)
    try:
        caller = Caller("core-get", again.endpoint, *key)
        exc = refused(again, lambda: caller.call("GetInstance", InstanceId=instance_id))
        assert error_code(exc) == "SignatureNonceUsed"
    finally:
        again.stop()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_missing_and_invalid_parameters(api, instance_id, flavour):
    caller = Caller(flavour, api.endpoint, api.access_key_id, api.access_key_secret)
    exc = refused(api, lambda: caller.call("CreateNamespace", InstanceId=instance_id))
    assert error_code(exc) == "MissingParameter"
    assert "NamespaceName" in (exc.message if hasattr(exc, "message") else str(exc))

    exc = refused(
        api,
        lambda: caller.call("ListRepository", InstanceId=instance_id, PageSize=1000),
    )
    assert error_code(exc) == "InvalidParameter"
    assert "PageSize" in str(exc)

    exc = refused(
        api,
        lambda: caller.call(
            "CreateNamespace", InstanceId=instance_id, NamespaceName="Bad Name!"
        ),
    )
    assert error_code(exc) == "InvalidParameter"
    assert "NamespaceName" in str(exc)

    exc = refused(
        api,
        lambda: caller.call(
            "CreateArtifactBuildRule",
            InstanceId=instance_id,
            ArtifactType="ACCELERATED_IMAGE",
            ScopeType="REPOSITORY",
            ScopeId="crr-x",
            Parameters={"ImageIndexOnly": True},
        ),
    )
    assert error_code(exc) == "InvalidParameter"
    assert "ImageIndexOnly" in str(exc)


def test_unknown_parameters_are_ignored(api, instance_id):
    caller = Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)
    body = caller.call("GetInstance", InstanceId=instance_id, SomethingNew="x")
    assert body["IsSuccess"] is True


def test_unknown_action(api):
    caller = Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)
    exc = refused(api, lambda: caller.call("CreateInstance", InstanceName="x"))
    assert error_code(exc) == "InvalidAction.NotFound"
    assert error_status(exc) == 404


def test_throttling(tmp_path):
    """With a per-key rate, Tea 0.4 sees its ThrottlingException and a retry hint."""
    from alibabacloud_tea_openapi.exceptions import ThrottlingException

    server = start_api(
        tmp_path, None, "--workers", "0", settings={"api_rate_per_key": "1"}
    )
    try:
        caller = Caller(
            "tea-v3", server.endpoint, server.access_key_id, server.access_key_secret
        )
        with pytest.raises(ThrottlingException) as info:
            for _ in range(10):
                caller.call("ListInstance")
        assert info.value.code == "Throttling.User"
        assert info.value.retry_after > 0
    finally:
        server.stop()


def test_other_http_methods_get_a_catalog_error(api):
    before = api.snapshot()
    response = httpx.put(api.url + "/?Action=GetInstance", content=b"x")
    assert response.status_code == 405
    assert response.json()["Code"] == "UnsupportedHTTPMethod"
    assert api.snapshot() == before


def test_oversized_body_is_refused_unread(api):
    response = httpx.post(
        api.url,
        content=b"a=" + b"x" * (2 << 20),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["Code"] == "RequestEntityTooLarge"
