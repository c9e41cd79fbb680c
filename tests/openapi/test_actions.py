"""The action table: validation of parameters, and agreement with the SDK models."""

from __future__ import annotations

import inspect
import re

import pytest
from alibabacloud_cr20181201 import models

from artifactd.openapi.actions import ACTIONS, COMMON_FIELDS
from artifactd.openapi.errors import GatewayError
from artifactd.openapi.reference import render
from tests.conftest import ROOT

SDK_ACTIONS = [a for a in ACTIONS.values() if not a.extension]


def sdk_fields(model_class) -> dict[str, object]:
    """Wire name -> nested model class (or None) for one SDK model."""
    source = inspect.getsource(model_class.from_map)
    names = re.findall(r"m\.get\('([A-Za-z]+)'\)", source)
    init = inspect.signature(model_class.__init__).parameters
    nested: dict[str, object] = {}
    for name in dict.fromkeys(names):
        annotation = str(init[_snake(name)].annotation)
        match = re.search(r"main_models\.(\w+)", annotation)
        nested[name] = getattr(models, match.group(1)) if match else None
    return nested


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def compare(fields, model_class, where: str) -> None:
    expected = sdk_fields(model_class)
    documented = {f.name: f for f in fields}
    assert set(documented) == set(expected), where
    for name, child_model in expected.items():
        if child_model is not None:
            compare(documented[name].children, child_model, f"{where}.{name}")


@pytest.mark.parametrize("action", SDK_ACTIONS, ids=lambda a: a.name)
def test_response_fields_match_the_sdk_model(action):
    model = getattr(models, f"{action.name}ResponseBody")
    compare((*COMMON_FIELDS, *action.response), model, action.name)


@pytest.mark.parametrize("action", SDK_ACTIONS, ids=lambda a: a.name)
def test_request_parameters_match_the_sdk_model(action):
    model = getattr(models, f"{action.name}Request")
    assert {p.name for p in action.params} == set(sdk_fields(model))


def refusal(action: str, **params: str) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        ACTIONS[action].validate(params)
    return info.value


def test_types_and_ranges_are_refused_with_the_parameter_named():
    error = refusal("ListRepository", InstanceId="cri-x", PageSize="abc")
    assert (error.code, error.status) == ("InvalidParameter", 400)
    assert '"PageSize"' in error.message
    assert (
        '"PageNo"' in refusal("ListRepository", InstanceId="cri-x", PageNo="0").message
    )
    assert (
        '"TagImmutability"'
        in refusal(
            "CreateRepository",
            InstanceId="c",
            RepoNamespaceName="n",
            RepoName="app",
            RepoType="PRIVATE",
            Summary="s",
            TagImmutability="yes",
        ).message
    )
    assert (
        '"RepoType"'
        in refusal(
            "CreateRepository",
            InstanceId="c",
            RepoNamespaceName="n",
            RepoName="app",
            RepoType="SECRET",
            Summary="s",
        ).message
    )


def test_json_object_fields_are_checked_one_by_one():
    base = dict(
        InstanceId="c",
        ArtifactType="ACCELERATED_IMAGE",
        ScopeType="REPOSITORY",
        ScopeId="r",
    )
    error = refusal("CreateArtifactBuildRule", **base, Parameters='{"Priority": 6}')
    assert '"Parameters.Priority"' in error.message
    error = refusal("CreateArtifactBuildRule", **base, Parameters="[1, 2]")
    assert '"Parameters"' in error.message
    values = ACTIONS["CreateArtifactBuildRule"].validate(
        {**base, "Parameters": '{"ImageIndexOnly": "False", "Priority": "2"}'}
    )
    assert values["Parameters"]["Priority"] == 2
    assert values["Parameters"]["ImageIndexOnly"] is False


def test_booleans_in_any_case_and_unknown_parameters_ignored():
    values = ACTIONS["CreateNamespace"].validate(
        {"InstanceId": "c", "NamespaceName": "ns", "AutoCreateRepo": "False", "X": "1"}
    )
    assert values["AutoCreateRepo"] is False
    assert "X" not in values
    assert (
        ACTIONS["CreateNamespace"].validate(
            {"InstanceId": "c", "NamespaceName": "ns", "AutoCreateRepo": "TRUE"}
        )["AutoCreateRepo"]
        is True
    )


def test_alternative_parameter_groups():
    error = refusal("GetRepository", InstanceId="c", RepoName="app")
    assert error.code == "MissingParameter"
    assert "RepoId" in error.message and "RepoNamespaceName" in error.message
    assert (
        ACTIONS["GetRepository"].validate(
            {"InstanceId": "c", "RepoNamespaceName": "n", "RepoName": "app"}
        )["RepoName"]
        == "app"
    )


def test_committed_reference_page_is_generated_from_the_table():
    committed = (ROOT / "docs" / "api.md").read_text()
    assert committed == render(), (
        "docs/api.md is stale: python -m artifactd.openapi.reference > docs/api.md"
    )
    for name, action in ACTIONS.items():
        heading = f"### {name}" + (" (extension)" if action.extension else "")
        assert heading + "\n" in committed
