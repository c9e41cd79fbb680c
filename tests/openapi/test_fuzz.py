"""Property-based fuzzing of every action's parameters, correctly signed.

For each action, hypothesis draws parameter sets mixing valid values, real
ids, wrong types, out-of-range numbers, odd text and unknown names. Each set
is signed (RPC v1) and sent to the live server. Properties: the answer is
never a 5xx, always JSON with a RequestId, and a refused call (a gateway
error or an in-band failure) leaves every table of the store unchanged.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifactd.openapi.actions import ACTIONS
from artifactd.openapi.schema import BOOLEAN, INTEGER, OBJECT, Param
from artifactd.openapi.signing import rpc_v1_signature, rpc_v1_string_to_sign
from artifactd.store import builds
from artifactd.store.db import open_data_dir
from tests.openapi.clients import Caller, create_repository

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "-1", "0", "1e9", "true", "None", "%00", "a" * 300]),
    st.sampled_from(["{", "[]", "null", '{"Priority": "x"}', '{"ImageIndexOnly": 1}']),
)


@pytest.fixture(scope="module")
def world(api):
    """A namespace, repository, rule and task to aim the fuzzer at."""
    caller = Caller("core-get", api.endpoint, api.access_key_id, api.access_key_secret)
    instance_id = caller.call("ListInstance")["Instances"][0]["InstanceId"]
    repo_id = create_repository(caller, instance_id, "fuzz")
    namespace_id = caller.call(
        "GetNamespace", InstanceId=instance_id, NamespaceName="fuzz"
    )["NamespaceId"]
    rule_id = caller.call(
        "CreateArtifactBuildRule",
        InstanceId=instance_id,
        ArtifactType="ACCELERATED_IMAGE",
        ScopeType="REPOSITORY",
        ScopeId=repo_id,
    )["BuildRuleId"]
    with open_data_dir(api.data_dir)() as session, session.begin():
        task = builds.create_task(
            session, instance_id, repo_id, "v1", builds.RuleParameters()
        )
        task_id = task.id
    return {
        "InstanceId": instance_id,
        "RepoId": repo_id,
        "ScopeId": repo_id,
        "NamespaceId": namespace_id,
        "BuildRuleId": rule_id,
        "BuildTaskId": task_id,
        "NamespaceName": "fuzz",
        "RepoNamespaceName": "fuzz",
        "RepoName": "app",
    }


def value_for(param: Param, world: dict) -> st.SearchStrategy:
    good: list[st.SearchStrategy] = []
    if param.name in world:
        good.append(st.just(world[param.name]))
    if param.choices:
        good.append(st.sampled_from(param.choices))
    if param.kind == INTEGER:
        low = param.minimum if param.minimum is not None else -5
        high = param.maximum if param.maximum is not None else 10**6
        good.append(st.integers(low, high).map(str))
        good.append(st.integers(-(2**70), 2**70).map(str))
    elif param.kind == BOOLEAN:
        good.append(st.sampled_from(["True", "False", "true", "FALSE"]))
    elif param.kind == OBJECT:
        good.append(
            st.fixed_dictionaries(
                {},
                optional={
                    "Priority": st.integers(-2, 8),
                    "ImageIndexOnly": st.booleans(),
                    "PriorityFile": st.sampled_from(
                        ["L2Jpbi9zaAo=", "bm90IGFic29sdXRl", "!"]
                    ),
                    "RepoType": st.sampled_from(["PUBLIC", "X"]),
                },
            ).map(json.dumps)
        )
    else:
        good.append(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}[a-z0-9]", fullmatch=True))
    # Four draws in five are plausible values, so calls get past validation
    # and the lookups to the handlers; the fifth is odd text.
    plausible = st.one_of(*good)
    if param.name in world:
        plausible = st.one_of(st.just(world[param.name]), plausible)
    return st.integers(0, 4).flatmap(lambda n: ODD_TEXT if n == 0 else plausible)


def params_for(action_name: str, world: dict) -> st.SearchStrategy:
    action = ACTIONS[action_name]
    required = {p.name: value_for(p, world) for p in action.params if p.required}
    optional = {p.name: value_for(p, world) for p in action.params if not p.required}
    unknown = st.dictionaries(
        st.from_regex(r"[A-Z][A-Za-z]{2,12}", fullmatch=True), ODD_TEXT, max_size=2
    )
    return st.tuples(st.fixed_dictionaries(required, optional=optional), unknown).map(
        lambda pair: {**pair[1], **pair[0]}
    )


def signed_call(api, action: str, params: dict, method: str) -> httpx.Response:
    query = {
        **params,
        "Action": action,
        "Version": "2018-12-01",
        "Format": "JSON",
        "AccessKeyId": api.access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": uuid.uuid4().hex,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    query["Signature"] = rpc_v1_signature(
        rpc_v1_string_to_sign(method, query), api.access_key_secret
    )
    if method == "GET":
        return httpx.get(api.url, params=query, timeout=30)
    return httpx.post(api.url, data=query, timeout=30)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_fuzzed_parameters_never_break_the_server(api, world, action):
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(params=params_for(action, world), method=st.sampled_from(["GET", "POST"]))
    def run(params, method):
        before = api.snapshot()
        response = signed_call(api, action, params, method)
        assert response.status_code < 500, response.text
        body = response.json()
        assert body["RequestId"]
        if response.status_code != 200 or body.get("IsSuccess") is not True:
            assert body["Code"] != "success"
            assert api.snapshot() == before, (params, body)

    run()
