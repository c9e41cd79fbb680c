"""Tag actions, answered from the registry's storage, and docker login tokens."""

from __future__ import annotations

import time
from typing import Any

from artifactd.errors import RegistryError
from artifactd.openapi.errors import BusinessError, GatewayError
from artifactd.openapi.handlers.base import Context, Page
from artifactd.openapi.services import TagInfo
from artifactd.store import keys


def _hex(digest: str) -> str:
    """ACR reports digests as bare hex, without the ``sha256:`` prefix."""
    return digest.partition(":")[2] or digest


def image_body(info: TagInfo, times_as_text: bool) -> dict[str, Any]:
    created, updated = info.created_ms, info.updated_ms
    return {
        "Tag": info.tag,
        "Digest": _hex(info.digest),
        "ImageId": _hex(info.config_digest),
        "ImageSize": info.size,
        "Status": "NORMAL",
        "ImageCreate": str(created) if times_as_text else created,
        "ImageUpdate": str(updated) if times_as_text else updated,
    }


def list_tags(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    page = Page.from_params(p)
    with ctx.transaction() as session:
        repository = ctx.services.repository(session, p["InstanceId"], p["RepoId"])
        path = repository.path
    names = ctx.services.tags.list_tags(path)
    chosen = names[page.offset : page.offset + page.limit]
    # A tag deleted between listing and describing is left out of the page.
    infos = [ctx.services.tags.get_tag(path, name) for name in chosen]
    return {
        **page.fields(len(names), len(chosen)),
        "TotalCount": str(len(names)),
        "Images": [image_body(i, times_as_text=True) for i in infos if i is not None],
    }


def get_tag(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        repository = ctx.services.repository(session, p["InstanceId"], p["RepoId"])
    return image_body(ctx.services.tag(repository, p["Tag"]), times_as_text=False)


def delete_tag(ctx: Context) -> dict[str, Any]:
    p = ctx.params
    with ctx.transaction() as session:
        repository = ctx.services.repository(session, p["InstanceId"], p["RepoId"])
    if repository.tag_immutability:
        raise BusinessError("TAG_IMMUTABLE")
    try:
        deleted = ctx.services.tags.delete_tag(repository.path, p["Tag"])
    except RegistryError as exc:
        raise BusinessError("TAG_NOT_DELETABLE", f"{exc}.") from None
    if not deleted:
        raise BusinessError("TAG_NOT_EXIST")
    return {}


def get_authorization_token(ctx: Context) -> dict[str, Any]:
    """A temporary password for the calling key, bounded by ExpiresInHours."""
    expires_at = int(time.time()) + 3600 * ctx.params["ExpiresInHours"]
    with ctx.transaction() as session:
        key = session.get(keys.AccessKey, ctx.access_key_id)
        if key is None:
            # Deleted between the signature check and now.
            raise GatewayError("InvalidAccessKeyId.NotFound")
        password = keys.registry_password(key, expires_at)
    return {
        "TempUsername": ctx.access_key_id,
        "AuthorizationToken": password,
        "ExpireTime": expires_at * 1000,
    }


HANDLERS = {
    "ListRepoTag": list_tags,
    "GetRepoTag": get_tag,
    "DeleteRepoTag": delete_tag,
    "GetAuthorizationToken": get_authorization_token,
}
