"""Putting the API together over a data directory, and its first-start message.

``artifactd serve`` and the stand-alone launcher (``python -m
artifactd.openapi``) both go through :func:`build_api`, so they answer the
same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from artifactd.openapi.app import api_routes, create_api_app
from artifactd.openapi.services import ApiServices, TagSource
from artifactd.openapi.signing import NonceCache, SignatureVerifier
from artifactd.openapi.tagsources import StorageTags
from artifactd.openapi.throttle import RateLimiter
from artifactd.registry.storage import RegistryStorage
from artifactd.store import keys, repositories
from artifactd.store.db import open_data_dir
from artifactd.store.keys import AccessKey
from artifactd.store.repositories import Instance


@dataclass
class Api:
    """The app, the instance it serves, and the key made at first start (if any)."""

    app: Starlette
    sessions: sessionmaker[Session]
    instance: Instance
    first_key: AccessKey | None


def prepare_store(
    sessions: sessionmaker[Session],
    instance_name: str = "artifactd",
    region_id: str = "local",
    endpoint: str = "",
) -> tuple[Instance, AccessKey | None]:
    """Ensure the instance and, on first start, one access key."""
    with sessions() as session, session.begin():
        instance = repositories.ensure_instance(session, instance_name, region_id)
        if endpoint and instance.endpoint != endpoint:
            instance.endpoint = endpoint
        first_key = keys.ensure_first_key(session)
    return instance, first_key


def build_api(
    data_dir: str | os.PathLike[str],
    tags: TagSource,
    endpoint: str = "",
    rate_per_key: float | None = None,
    secret_cache_seconds: float = 5.0,
) -> Api:
    """The API over the SQLite store in ``data_dir`` (created if missing)."""
    sessions = open_data_dir(data_dir)
    instance, first_key = prepare_store(sessions, endpoint=endpoint)
    services = ApiServices(
        sessions,
        instance.id,
        tags,
        run_inline=True,
        secret_cache_seconds=secret_cache_seconds,
    )
    limiter = RateLimiter(rate_per_key, 2 * rate_per_key) if rate_per_key else None
    app = create_api_app(services, rate_limiter=limiter)
    return Api(app, sessions, instance, first_key)


def mount_api(
    sessions: sessionmaker[Session],
    instance_id: str,
    storage: RegistryStorage,
    rate_per_key: float | None = None,
    on_task_queued: Callable[[], None] | None = None,
    secret_cache_seconds: float = 5.0,
    nonces: NonceCache | None = None,
) -> list[BaseRoute]:
    """The API routes for ``artifactd serve``, tags read from the registry storage.

    Pass them as ``extra_routes`` of :func:`artifactd.app.create_app`;
    ``on_task_queued`` is called after CreateArtifactBuildTask queues a task;
    ``nonces`` is where used nonces are kept (by default, in memory only).
    """
    services = ApiServices(
        sessions,
        instance_id,
        StorageTags(storage),
        run_inline=True,
        on_task_queued=on_task_queued,
        secret_cache_seconds=secret_cache_seconds,
    )
    limiter = RateLimiter(rate_per_key, 2 * rate_per_key) if rate_per_key else None
    verifier = SignatureVerifier(services.lookup_secret, nonces)
    return api_routes(services, verifier, rate_limiter=limiter)


def first_start_message(key: AccessKey, api_endpoint: str, instance_id: str) -> str:
    """What the first start prints: the new key (shown once) and an SDK example."""
    return f"""\
artifactd created an access key for the API. The secret is shown only now:

    AccessKeyId:     {key.id}
    AccessKeySecret: {key.secret}

{sdk_example(key.id, key.secret, api_endpoint, instance_id)}
Manage keys with: artifactd keys create | list | delete
"""


def sdk_example(key_id: str, secret: str, api_endpoint: str, instance_id: str) -> str:
    """A ready-to-run script calling the API with the official SDK."""
    return f"""\
Try it with the official SDK (pip install alibabacloud-cr20181201):

    from alibabacloud_cr20181201.client import Client
    from alibabacloud_cr20181201 import models
    from alibabacloud_tea_openapi.models import Config

    client = Client(Config(access_key_id="{key_id}",
                           access_key_secret="{secret}",
                           endpoint="{api_endpoint}", protocol="http"))
    print(client.get_instance(models.GetInstanceRequest(
        instance_id="{instance_id}")).body)
"""
