"""Instance, namespace and repository actions."""

from __future__ import annotations

import json
from typing import Any

from artifactd.errors import RecordExistsError, RegistryError
from artifactd.openapi.errors import BusinessError
from artifactd.openapi.handlers.base import Context, Page, page_offset
from artifactd.store import builds, repositories
from artifactd.store.repositories import Instance, Namespace, Repository


def instance_body(instance: Instance, times_as_text: bool = False) -> dict[str, Any]:
    created, modified = instance.created_at, instance.modified_at
    return {
        "InstanceId": instance.id,
        "InstanceName": instance.name,
        "InstanceStatus": instance.status,
        "InstanceSpecification": instance.specification,
        "InstanceIssue": "",
        "ResourceGroupId": "",
        "CreateTime": str(created) if times_as_text else created,
        "ModifiedTime": str(modified) if times_as_text else modified,
        "Tags": [],
    }


def namespace_body(namespace: Namespace) -> dict[str, Any]:
    return {
        "NamespaceId": namespace.id,
        "NamespaceName": namespace.name,
        "NamespaceStatus": namespace.status,
        "AutoCreateRepo": namespace.auto_create_repo,
        "DefaultRepoType": namespace.default_repo_type,
        "DefaultRepoConfiguration": namespace.repo_configuration,
        "InstanceId": namespace.instance_id,
        "ResourceGroupId": "",
    }


def repository_body(repository: Repository, detail: bool = False) -> dict[str, Any]:
    body = {
        "RepoId": repository.id,
        "InstanceId": repository.instance_id,
        "RepoName": repository.name,
        "RepoNamespaceName": repository.namespace_name,
        "RepoType": repository.repo_type,
        "RepoStatus": repository.status,
        "RepoBuildType": repository.build_type,
        "Summary": repository.summary,
        "TagImmutability": repository.tag_immutability,
        "CreateTime": repository.created_at,
        "ModifiedTime": repository.modified_at,
        "ResourceGroupId": "",
    }
    if detail:
        body["Detail"] = repository.detail
    return body


# Instances ---------------------------------------------------------------


def list_instances(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        found = [
            i
            for i in repositories.list_instances(session)
            if (p["InstanceName"] is None or i.name == p["InstanceName"])
            and (p["InstanceStatus"] is None or i.status == p["InstanceStatus"])
            and p["ResourceGroupId"] in (None, "")
        ]
    offset, limit = page_offset(p["PageNo"], p["PageSize"])
    return {
        "PageNo": p["PageNo"],
        "PageSize": p["PageSize"],
        "TotalCount": len(found),
        "Instances": [
            {**instance_body(i, times_as_text=True), "RegionId": i.region_id}
            for i in found[offset : offset + limit]
        ],
    }


def get_instance(ctx: Context) -> dict[str, Any]:
    with ctx.transaction() as session:
        instance = session.get(Instance, ctx.params["InstanceId"])
        if instance is None:
            raise BusinessError("INSTANCE_NOT_EXIST")
        return instance_body(instance)


# Namespaces --------------------------------------------------------------


def _configuration(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The stored DefaultRepoConfiguration: only the fields that were given."""
    if not raw:
        return {}
    config = {k: v for k, v in raw.items() if v is not None}
    rule = config.get("ArtifactBuildRuleParameters")
    if rule is not None:
        config["ArtifactBuildRuleParameters"] = {
            k: v for k, v in rule.items() if v is not None
        }
    return config


def create_namespace(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        try:
            repositories.create_namespace(
                session,
                p["InstanceId"],
                p["NamespaceName"],
                auto_create_repo=p["AutoCreateRepo"],
                default_repo_type=p["DefaultRepoType"],
                configuration=_configuration(p["DefaultRepoConfiguration"]),
            )
        except RecordExistsError:
            raise BusinessError("NAMESPACE_ALREADY_EXIST") from None
    return {}


def get_namespace(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        namespace = ctx.services.namespace(
            session, p["InstanceId"], p["NamespaceId"], p["NamespaceName"]
        )
        return namespace_body(namespace)


def list_namespaces(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    offset, limit = page_offset(p["PageNo"], p["PageSize"])
    status = None if p["NamespaceStatus"] in (None, "ALL") else p["NamespaceStatus"]
    with ctx.transaction() as session:
        found, total = repositories.list_namespaces(
            session, p["InstanceId"], offset, limit, p["NamespaceName"], status
        )
        return {
            "PageNo": p["PageNo"],
            "PageSize": p["PageSize"],
            "TotalCount": str(total),
            "Namespaces": [namespace_body(n) for n in found],
        }


def update_namespace(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        namespace = ctx.services.namespace(
            session, p["InstanceId"], name=p["NamespaceName"]
        )
        if p["AutoCreateRepo"] is not None:
            namespace.auto_create_repo = p["AutoCreateRepo"]
        if p["DefaultRepoType"] is not None:
            namespace.default_repo_type = p["DefaultRepoType"]
        if p["DefaultRepoConfiguration"] is not None:
            merged = {
                **namespace.repo_configuration,
                **_configuration(p["DefaultRepoConfiguration"]),
            }
            namespace.default_repo_configuration = json.dumps(merged)
        namespace.modified_at = repositories.now_ms()
    return {}


def delete_namespace(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        namespace = ctx.services.namespace(
            session, p["InstanceId"], name=p["NamespaceName"]
        )
        try:
            repositories.delete_namespace(session, namespace)
        except RecordExistsError as exc:
            raise BusinessError("NAMESPACE_NOT_EMPTY", f"{exc}.") from None
        builds.delete_rules_for_scope(session, p["InstanceId"], namespace.id)
    return {}


# Repositories ------------------------------------------------------------


def create_repository(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        namespace = ctx.services.namespace(
            session, p["InstanceId"], name=p["RepoNamespaceName"]
        )
        try:
            repository = repositories.create_repository(
                session,
                namespace,
                p["RepoName"],
                repo_type=p["RepoType"],
                summary=p["Summary"],
                detail=p["Detail"] or "",
                tag_immutability=p["TagImmutability"],
            )
        except RecordExistsError:
            raise BusinessError("REPO_ALREADY_EXIST") from None
        return {"RepoId": repository.id}


def _find(ctx: Context, session) -> Repository:
    p = ctx.params
    return ctx.services.repository(
        session,
        p["InstanceId"],
        repo_id=p["RepoId"],
        namespace_name=p["RepoNamespaceName"],
        name=p["RepoName"],
    )


def get_repository(ctx: Context) -> dict[str, Any]:
    with ctx.transaction() as session:
        return repository_body(_find(ctx, session), detail=True)


def list_repositories(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    status = None if p["RepoStatus"] in (None, "ALL") else p["RepoStatus"]
    page = Page.from_params(p)
    with ctx.transaction() as session:
        found, total = repositories.list_repositories(
            session,
            p["InstanceId"],
            page.offset,
            page.limit,
            namespace_name=p["RepoNamespaceName"],
            name=p["RepoName"],
            status=status,
        )
        return {
            **page.fields(total, len(found)),
            "TotalCount": str(total),
            "Repositories": [repository_body(r) for r in found],
        }


def update_repository(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        repository = _find(ctx, session)
        repository.repo_type = p["RepoType"]
        repository.summary = p["Summary"]
        if p["Detail"] is not None:
            repository.detail = p["Detail"]
        if p["TagImmutability"] is not None:
            repository.tag_immutability = p["TagImmutability"]
        repository.modified_at = repositories.now_ms()
    return {}


def delete_repository(ctx: Context) -> dict[str, Any]:
    """Delete the repository's tags in the registry, then its record and rules.

    Tags go first: if the registry refuses one, the repository stays listed
    (with the tags not yet deleted) and a retry finishes the job, rather than
    leaving images behind that no repository record describes.
    """
    p = ctx.params
    with ctx.transaction() as session:
        path = _find(ctx, session).path
    tags = ctx.services.tags
    for tag in tags.list_tags(path):
        try:
            tags.delete_tag(path, tag)
        except RegistryError as exc:
            raise BusinessError("TAG_NOT_DELETABLE", f"{exc}.") from None
    with ctx.transaction() as session:
        repository = _find(ctx, session)
        builds.delete_rules_for_scope(session, p["InstanceId"], repository.id)
        repositories.delete_repository(session, repository)
    return {}


HANDLERS = {
    "ListInstance": list_instances,
    "GetInstance": get_instance,
    "CreateNamespace": create_namespace,
    "GetNamespace": get_namespace,
    "ListNamespace": list_namespaces,
    "UpdateNamespace": update_namespace,
    "DeleteNamespace": delete_namespace,
    "CreateRepository": create_repository,
    "GetRepository": get_repository,
    "ListRepository": list_repositories,
    "UpdateRepository": update_repository,
    "DeleteRepository": delete_repository,
}
