"""Artifact build actions: rules, tasks and task logs."""

from __future__ import annotations

from typing import Any

from artifactd.errors import InvalidStateError, RecordExistsError, RecordNotFoundError
from artifactd.openapi.errors import BusinessError, invalid_parameter
from artifactd.openapi.handlers.base import Context, page_offset, without_none
from artifactd.store import builds
from artifactd.store.builds import BuildRule, BuildTask, RuleParameters


def rule_parameters(raw: dict[str, Any] | None) -> RuleParameters:
    """Typed rule parameters from the validated ``Parameters`` object.

    Refuses what the builder cannot honour with InvalidParameter, before
    anything is stored.
    """
    raw = raw or {}
    if raw.get("ImageIndexOnly"):
        raise invalid_parameter(
            "Parameters.ImageIndexOnly",
            "cannot be true: index-only acceleration is not supported; "
            "use false to build full accelerated images.",
        )
    priority_file = raw.get("PriorityFile")
    if priority_file:
        try:
            builds.decode_priority_file(priority_file)
        except ValueError as exc:
            raise invalid_parameter("Parameters.PriorityFile", f"{exc}.") from None
    return RuleParameters(
        priority=raw.get("Priority") or 1,
        priority_file=priority_file or None,
        image_index_only=False,
    )


def rule_body(rule: BuildRule) -> dict[str, Any]:
    return {
        "BuildRuleId": rule.id,
        "ArtifactType": rule.artifact_type,
        "ScopeType": rule.scope_type,
        "ScopeId": rule.scope_id,
        "Parameters": without_none(
            {
                "ImageIndexOnly": rule.image_index_only,
                "Priority": rule.priority,
                "PriorityFile": rule.priority_file,
            }
        ),
    }


def task_body(task: BuildTask | builds.TaskRow) -> dict[str, Any]:
    """GetArtifactBuildTask's fields; also one item of ListArtifactBuildTask."""
    return {
        "BuildTaskId": task.id,
        "TaskStatus": task.status,
        "ArtifactBuildType": task.build_type,
        "Priority": task.priority,
        "StartTime": task.start_time,
        "EndTime": task.end_time,
        "Instructions": [],
        "SourceArtifact": _artifact(
            task.source_repo_id, task.source_tag, task.source_size, task.source_layers
        ),
        "TargetArtifact": _artifact(
            task.target_repo_id, task.target_tag, task.target_size, task.target_layers
        ),
        "ArtifactCompression": {
            "Platform": task.platform,
            "SquashKeepLayers": 0,
            "StartLayerDigest": "",
        },
    }


def _artifact(repo_id: str, tag: str, size: int, layers: int) -> dict[str, Any]:
    return {
        "ArtifactType": "IMAGE",
        "RepoId": repo_id,
        "Version": tag,
        "Size": size,
        "LayerCount": layers,
    }


def create_rule(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    parameters = rule_parameters(p["Parameters"])
    with ctx.transaction() as session:
        if p["ScopeType"] == builds.SCOPE_REPOSITORY:
            ctx.services.repository(session, p["InstanceId"], repo_id=p["ScopeId"])
        else:
            ctx.services.namespace(session, p["InstanceId"], namespace_id=p["ScopeId"])
        try:
            rule = builds.create_rule(
                session, p["InstanceId"], p["ScopeType"], p["ScopeId"], parameters
            )
        except RecordExistsError:
            raise BusinessError("ARTIFACT_BUILD_RULE_ALREADY_EXIST") from None
        return {"BuildRuleId": rule.id}


def get_rule(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        if p["BuildRuleId"] is not None:
            rule = _rule(session, p["InstanceId"], p["BuildRuleId"])
        else:
            rule = builds.find_rule(
                session,
                p["InstanceId"],
                p["ArtifactType"],
                p["ScopeType"],
                p["ScopeId"],
            )
            if rule is None:
                raise BusinessError("ARTIFACT_BUILD_RULE_NOT_EXIST")
        return rule_body(rule)


def list_rules(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    offset, limit = page_offset(p["PageNo"], p["PageSize"])
    with ctx.transaction() as session:
        rules, total = builds.list_rules(
            session, p["InstanceId"], p["ScopeType"], p["ScopeId"], offset, limit
        )
        return {
            "PageNo": p["PageNo"],
            "PageSize": p["PageSize"],
            "TotalCount": total,
            "BuildRules": [rule_body(r) for r in rules],
        }


def update_rule(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    parameters = rule_parameters(p["Parameters"])
    with ctx.transaction() as session:
        try:
            builds.update_rule(session, p["InstanceId"], p["BuildRuleId"], parameters)
        except RecordNotFoundError:
            raise BusinessError("ARTIFACT_BUILD_RULE_NOT_EXIST") from None
    return {}


def delete_rule(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        try:
            builds.delete_rule(session, p["InstanceId"], p["BuildRuleId"])
        except RecordNotFoundError:
            raise BusinessError("ARTIFACT_BUILD_RULE_NOT_EXIST") from None
    return {}


def _rule(session, instance_id: str, rule_id: str) -> BuildRule:
    try:
        return builds.get_rule(session, instance_id, rule_id)
    except RecordNotFoundError:
        raise BusinessError("ARTIFACT_BUILD_RULE_NOT_EXIST") from None


def _task(session, instance_id: str, task_id: str) -> BuildTask:
    try:
        return builds.get_task(session, instance_id, task_id)
    except RecordNotFoundError:
        raise BusinessError("ARTIFACT_BUILD_TASK_NOT_EXIST") from None


def create_task(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    if p["Tag"].endswith(builds.TARGET_SUFFIX):
        raise invalid_parameter(
            "Tag", "names an accelerated image; build its source tag instead."
        )
    with ctx.transaction() as session:
        repo = ctx.services.repository(session, p["InstanceId"], repo_id=p["RepoId"])
        image = ctx.services.tag(repo, p["Tag"])
        rule = builds.rule_for_repository(
            session, p["InstanceId"], repo.id, repo.namespace_id
        )
        parameters = RuleParameters()
        if rule is not None:
            parameters = RuleParameters(rule.priority, rule.priority_file, False)
        task = builds.create_task(
            session,
            p["InstanceId"],
            repo.id,
            p["Tag"],
            parameters,
            build_type=p["ArtifactBuildType"],
            rule_id=rule.id if rule is not None else None,
            source_digest=image.digest,
        )
        builds.append_log(session, task.id, f"Task queued for {repo.path}:{p['Tag']}")
        task_id = task.id
    ctx.services.task_queued()
    return {"BuildTaskId": task_id}


def get_task(ctx: Context) -> dict[str, Any]:
    # The most frequent call (clients poll it): read one row without the ORM.
    p = ctx.params
    try:
        task = ctx.services.task_reader.get(p["InstanceId"], p["BuildTaskId"])
    except RecordNotFoundError:
        raise BusinessError("ARTIFACT_BUILD_TASK_NOT_EXIST") from None
    return task_body(task)


def list_tasks(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    offset, limit = page_offset(p["PageNo"], p["PageSize"])
    with ctx.transaction() as session:
        tasks, total = builds.list_tasks(
            session,
            p["InstanceId"],
            offset,
            limit,
            repo_id=p["RepoId"],
            status=p["TaskStatus"],
            created_from=p["StartTime"],
            created_before=p["EndTime"],
        )
        return {
            "PageNo": p["PageNo"],
            "PageSize": p["PageSize"],
            "TotalCount": total,
            "BuildTasks": [task_body(t) for t in tasks],
        }


def list_task_logs(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    offset, limit = page_offset(p["Page"], p["PageSize"])
    with ctx.transaction() as session:
        task = _task(session, p["InstanceId"], p["BuildTaskId"])
        lines, total = builds.list_logs(session, task.id, offset, limit)
        return {
            "TotalCount": total,
            "BuildTaskLogs": [
                {"LineNumber": line.line_number, "Message": line.message}
                for line in lines
            ],
        }


def cancel_task(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        try:
            builds.cancel_task(session, p["InstanceId"], p["BuildTaskId"])
        except RecordNotFoundError:
            raise BusinessError("ARTIFACT_BUILD_TASK_NOT_EXIST") from None
        except InvalidStateError as exc:
            raise BusinessError(
                "ARTIFACT_BUILD_TASK_STATUS_INVALID", f"{exc}."
            ) from None
    return {}


HANDLERS = {
    "CreateArtifactBuildRule": create_rule,
    "GetArtifactBuildRule": get_rule,
    "ListArtifactBuildRule": list_rules,
    "UpdateArtifactBuildRule": update_rule,
    "DeleteArtifactBuildRule": delete_rule,
    "CreateArtifactBuildTask": create_task,
    "GetArtifactBuildTask": get_task,
    "ListArtifactBuildTask": list_tasks,
    "ListArtifactBuildTaskLog": list_task_logs,
    "CancelArtifactBuildTask": cancel_task,
}
