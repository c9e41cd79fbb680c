"""The app factory: the registry, its token endpoint and health, over the store.

:func:`create_app` builds everything from :class:`~artifactd.config.Settings`
and starts nothing at import. The registry only knows small protocols; this
module implements them with the store: access keys are the registry's
credentials, and namespaces and repositories decide what is public and what
a push may create (automatic repository creation, as ACR does it).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from artifactd.config import Settings
from artifactd.errors import RecordExistsError
from artifactd.registry.auth import Authorizer, Principal, TokenIssuer
from artifactd.registry.events import EventBus, WebhookNotifier
from artifactd.registry.server import Registry, RegistryConfig, registry_routes
from artifactd.registry.storage import FilesystemStorage
from artifactd.store import keys, repositories
from artifactd.store.db import (
    create_db_engine,
    create_schema,
    open_data_dir,
    session_factory,
)
from artifactd.store.keys import AccessKey
from artifactd.store.repositories import Instance

log = logging.getLogger(__name__)

_TOKEN_KEY_FILE = "token-signing.key"


class StoreCredentials:
    """Access keys as registry credentials: the key id as user, and as
    password either the secret or a temporary ``docker login`` password."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def verify(self, user: str, password: str) -> Principal | None:
        with self._sessions() as session:
            if keys.check_registry_password(session, user, password):
                return Principal(user)
        return None


class StorePolicy:
    """Repository visibility and automatic creation from the store.

    ``namespace/repository`` maps to a namespace and a repository row; a
    push to a repository that does not exist creates it (and its namespace)
    when the namespace's ``auto_create_repo`` is on, with the namespace's
    default visibility. Answers are cached for ``cache_seconds``, so a
    push of many blobs reads the store once.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        instance_id: str,
        cache_seconds: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._instance_id = instance_id
        self._cache_seconds = cache_seconds
        self._public: dict[str, tuple[bool, float]] = {}
        self._known: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_public(self, name: str) -> bool:
        now = time.monotonic()
        cached = self._public.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        namespace, _, repo = name.partition("/")
        with self._sessions() as session:
            row = repositories.find_repository(
                session, self._instance_id, namespace, repo
            )
            public = row is not None and row.repo_type == "PUBLIC"
        with self._lock:
            self._public[name] = (public, now + self._cache_seconds)
        return public

    def on_push_new_repository(self, name: str) -> bool:
        now = time.monotonic()
        if self._known.get(name, 0.0) > now:
            return True
        namespace_name, _, repo_name = name.partition("/")
        if not repo_name or "/" in repo_name:
            return False
        with self._sessions() as session, session.begin():
            allowed = self._ensure(session, namespace_name, repo_name)
        if allowed:
            with self._lock:
                self._known[name] = now + self._cache_seconds
        return allowed

    def _ensure(self, session: Session, namespace_name: str, repo_name: str) -> bool:
        found = repositories.find_repository(
            session, self._instance_id, namespace_name, repo_name
        )
        if found is not None:
            return True
        namespace = repositories.find_namespace(
            session, self._instance_id, name=namespace_name
        )
        if namespace is None:
            namespace = repositories.create_namespace(
                session, self._instance_id, namespace_name
            )
        if not namespace.auto_create_repo:
            return False
        try:
            with session.begin_nested():
                repositories.create_repository(
                    session, namespace, repo_name, repo_type=namespace.default_repo_type
                )
        except RecordExistsError:
            pass
        log.info("repository_created_by_push repo=%s/%s", namespace_name, repo_name)
        return True


@dataclass
class Service:
    """What the app holds, for the commands and for the parts mounted later."""

    settings: Settings
    sessions: sessionmaker[Session]
    instance: Instance
    registry: Registry
    notifier: WebhookNotifier | None
    #: The key created at this start (first start or bootstrap), to print once.
    new_key: AccessKey | None


def open_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the configured database, its tables created if missing."""
    if not settings.database_url:
        return open_data_dir(settings.data_dir)
    engine = create_db_engine(settings.database_url)
    create_schema(engine)
    return session_factory(engine)


def prepare_keys(
    settings: Settings, sessions: sessionmaker[Session]
) -> AccessKey | None:
    """Create the bootstrap key, or on first start a random one; the new key."""
    with sessions() as session, session.begin():
        if settings.bootstrap_access_key_id:
            key, created = keys.ensure_key(
                session,
                settings.bootstrap_access_key_id,
                settings.bootstrap_access_key_secret,
            )
            return key if created else None
        return keys.ensure_first_key(session)


def token_signing_key(data_dir: Path) -> bytes:
    """The registry token key, made on first start, readable by the service only."""
    path = data_dir / _TOKEN_KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def build_service(settings: Settings) -> Service:
    """Open the store and storage, and assemble the registry."""
    sessions = open_sessions(settings)
    with sessions() as session, session.begin():
        instance = repositories.ensure_instance(
            session, settings.instance_name, "local"
        )
    new_key = prepare_keys(settings, sessions)
    service_name = settings.public_url.split("://")[-1].rstrip("/") or "artifactd"
    issuer = TokenIssuer(
        token_signing_key(settings.data_dir), service_name, settings.token_ttl
    )
    authorizer = Authorizer(
        StoreCredentials(sessions),
        StorePolicy(sessions, instance.id),
        issuer,
        mode=settings.auth_mode,
    )
    events = EventBus()
    notifier = None
    if settings.webhook_endpoints:
        notifier = WebhookNotifier(settings.webhook_endpoints, source=service_name)
        events.subscribe(notifier)
    registry = Registry(
        FilesystemStorage(settings.registry_dir),
        authorizer,
        events,
        RegistryConfig(public_url=settings.public_url),
    )
    return Service(settings, sessions, instance, registry, notifier, new_key)


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(
    settings: Settings,
    extra_routes: Sequence[BaseRoute] = (),
    service: Service | None = None,
) -> Starlette:
    """The whole service as one ASGI app.

    ``/v2/`` and ``/auth/token`` are the registry, ``/healthz`` answers
    ``{"status": "ok"}``. ``extra_routes`` come last, so the OpenAPI, which
    answers at ``/``, is mounted there without shadowing the registry.
    ``app.state.service`` is the :class:`Service`.
    """
    service = service or build_service(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if service.notifier is not None:
            service.notifier.start()
        try:
            yield
        finally:
            if service.notifier is not None:
                service.notifier.stop()

    routes = [
        *registry_routes(service.registry),
        Route("/healthz", _healthz, methods=["GET", "HEAD"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    return app
