"""Call the API the way users do: through the official SDKs.

``Caller(flavour)`` turns ``call("GetRepository", RepoId=...)`` into a real
SDK call and returns the response body as a dict of wire names:

- ``tea-v3``: ``alibabacloud_cr20181201.Client``, ACS3-HMAC-SHA256 (default);
- ``tea-v1``: the same client with ``signature_algorithm='v2'`` (RPC v1);
- ``core-get``/``core-post``: ``aliyun-python-sdk-core`` ``CommonRequest``,
  parameters in the query string, or in a form body for ``core-post``.

Tea calls go through the action's SDK method and request model; the
extension actions, which the SDK lacks, go through the SDK's generic
``call_api``. Every Tea answer is also decoded into the SDK's response model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from alibabacloud_cr20181201 import models
from alibabacloud_cr20181201.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from darabonba.runtime import RuntimeOptions

from artifactd.openapi.actions import ACTIONS

FLAVOURS = ("tea-v3", "tea-v1", "core-get", "core-post")


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def tea_client(endpoint: str, key_id: str, secret: str, v1: bool) -> Client:
    config = Config(
        access_key_id=key_id,
        access_key_secret=secret,
        endpoint=endpoint,
        protocol="http",
        region_id="cn-hangzhou",
    )
    if v1:
        config.signature_algorithm = "v2"
    return Client(config)


def core_client(key_id: str, secret: str) -> AcsClient:
    return AcsClient(key_id, secret, "cn-hangzhou", auto_retry=False)


def common_request(
    endpoint: str, action: str, params: dict[str, Any], form: bool
) -> CommonRequest:
    request = CommonRequest(domain=endpoint, version="2018-12-01", action_name=action)
    request.set_protocol_type("http")
    if form:
        request.set_method("POST")
    for name, value in params.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        if form:
            request.add_body_params(name, text)
        else:
            request.add_query_param(name, text)
    return request


class Caller:
    def __init__(self, flavour: str, endpoint: str, key_id: str, secret: str):
        self.flavour = flavour
        self.endpoint = endpoint
        if flavour.startswith("tea"):
            self.tea = tea_client(endpoint, key_id, secret, flavour == "tea-v1")
        else:
            self.core = core_client(key_id, secret)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        if self.flavour.startswith("core"):
            request = common_request(
                self.endpoint, action, params, self.flavour == "core-post"
            )
            return json.loads(self.core.do_action_with_exception(request))
        if ACTIONS[action].extension:
            return self._tea_generic(action, params)
        return self._tea_model(action, params)

    def _tea_model(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        kwargs = {snake(k): v for k, v in params.items()}
        if "default_repo_configuration" in kwargs:
            kwargs["default_repo_configuration"] = models.RepoConfiguration().from_map(
                kwargs["default_repo_configuration"]
            )
        request = getattr(models, f"{action}Request")(**kwargs)
        response = getattr(self.tea, snake(action))(request)
        assert response.status_code == 200
        return response.body.to_map()

    def _tea_generic(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        query = {
            k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()
        }
        request = utils_models.OpenApiRequest(query=Utils.query(query))
        api = utils_models.Params(
            action=action,
            version="2018-12-01",
            protocol="HTTP",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        answer = self.tea.call_api(api, request, RuntimeOptions())
        assert answer["statusCode"] == 200
        return answer["body"]


def create_repository(caller: Caller, instance_id: str, namespace: str) -> str:
    """Create ``namespace`` and its repository ``app``; returns the RepoId."""
    created = caller.call(
        "CreateNamespace", InstanceId=instance_id, NamespaceName=namespace
    )
    assert created["IsSuccess"] is True, created
    repository = caller.call(
        "CreateRepository",
        InstanceId=instance_id,
        RepoNamespaceName=namespace,
        RepoName="app",
        RepoType="PRIVATE",
        Summary="app",
    )
    assert repository["IsSuccess"] is True, repository
    return repository["RepoId"]
