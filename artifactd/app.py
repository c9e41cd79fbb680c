"""The app factory: the whole service in one process, over the store.

:func:`build_service` assembles the parts from
:class:`~artifactd.config.Settings` and :func:`create_app` mounts them; nothing
starts at import, and the build workers start and stop with the app's
lifespan. The path of one image: a manifest pushed to the registry raises an
event, the :class:`BuildTrigger` queues a task in the store when a build rule
covers the repository, and a worker of the :class:`WorkerPool` claims it and
converts the image in place, reading and writing the registry's storage.

The registry only knows small protocols; this module implements them with the
store: access keys are the registry's credentials, and namespaces and
repositories decide what is public and what a push may create (automatic
repository creation, as ACR does it).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from artifactd.builds.cache import StoreLayerCache
from artifactd.builds.service import BuildService
from artifactd.builds.triggers import BuildTrigger
from artifactd.config import Settings
from artifactd.errors import RecordExistsError
from artifactd.formats.estargz import BuildOptions
from artifactd.metrics import CONTENT_TYPE, Metrics
from artifactd.openapi.app import RpcFastPath
from artifactd.openapi.launch import mount_api
from artifactd.openapi.nonce_journal import NonceJournal
from artifactd.openapi.signing import NonceCache
from artifactd.registry.auth import Authorizer, Principal, TokenIssuer
from artifactd.registry.events import EventBus, WebhookNotifier
from artifactd.registry.local import LocalRepository
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
from artifactd.workers.pool import WorkerPool

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
        namespace = repositories.ensure_namespace(
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
class Builds:
    """The build engine: push events in, accelerated images out."""

    service: BuildService
    pool: WorkerPool
    trigger: BuildTrigger
    compress_pool: ThreadPoolExecutor
    work_dir: Path
    workers: int

    def start(self) -> None:
        # Conversions interrupted by a crash leave their scratch files behind.
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True)
        if self.workers:
            self.pool.start()

    def stop(self) -> None:
        """Stop the workers; running builds are released for the next start."""
        if self.workers:
            self.pool.stop()
        self.compress_pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Service:
    """What the app holds, for the commands and for the parts it mounts."""

    settings: Settings
    sessions: sessionmaker[Session]
    instance: Instance
    registry: Registry
    notifier: WebhookNotifier | None
    #: The key created at this start (first start or bootstrap), to print once.
    new_key: AccessKey | None
    metrics: Metrics
    builds: Builds


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
    """Open the store and storage, and assemble the registry and the builds."""
    sessions = open_sessions(settings)
    service_name = settings.public_url.split("://")[-1].rstrip("/")
    with sessions() as session, session.begin():
        instance = repositories.ensure_instance(
            session, settings.instance_name, "local"
        )
        endpoint = service_name or f"{settings.host}:{settings.port}"
        if instance.endpoint != endpoint:
            instance.endpoint = endpoint
    new_key = prepare_keys(settings, sessions)
    service_name = service_name or "artifactd"
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
    metrics = Metrics(sessions)
    builds = build_engine(settings, sessions, instance.id, registry, metrics)
    events.subscribe(builds.trigger.on_push)
    return Service(
        settings, sessions, instance, registry, notifier, new_key, metrics, builds
    )


def build_engine(
    settings: Settings,
    sessions: sessionmaker[Session],
    instance_id: str,
    registry: Registry,
    metrics: Metrics,
) -> Builds:
    """Workers that build in the embedded registry, and the trigger feeding them."""

    def open_repository(name: str) -> tuple[LocalRepository, LocalRepository]:
        repository = LocalRepository(registry, name)
        return repository, repository

    work_dir = settings.data_dir / "work"
    compress_pool = ThreadPoolExecutor(
        settings.compress_threads or os.cpu_count() or 1,
        thread_name_prefix="compress",
    )
    service = BuildService(
        sessions,
        open_repository,
        options=BuildOptions(
            level=settings.build_compression_level,
            chunk_size=settings.build_chunk_size,
        ),
        cache=StoreLayerCache(sessions),
        compress_pool=compress_pool,
        work_dir=str(work_dir),
        metrics=metrics,
    )
    pool = WorkerPool(
        sessions,
        service,
        size=settings.build_workers,
        lease_seconds=settings.build_lease_seconds,
    )
    trigger = BuildTrigger(
        sessions, instance_id, registry.storage.resolve_tag, pool.wake
    )
    return Builds(
        service, pool, trigger, compress_pool, work_dir, settings.build_workers
    )


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _metrics_route(metrics: Metrics) -> Route:
    async def render(request: Request) -> Response:
        body = await to_thread.run_sync(metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    return Route("/metrics", render, methods=["GET"])


def create_app(
    settings: Settings,
    extra_routes: Sequence[BaseRoute] = (),
    service: Service | None = None,
) -> Starlette:
    """The whole service as one ASGI app.

    ``/v2/`` and ``/auth/token`` are the registry, ``/healthz`` answers
    ``{"status": "ok"}``, ``/metrics`` is Prometheus text, and the OpenAPI
    answers at ``/``, mounted last so it shadows nothing. ``extra_routes`` go
    before the OpenAPI. The build workers run while the app's lifespan does.
    ``app.state.service`` is the :class:`Service`.
    """
    service = service or build_service(settings)

    # Used nonces outlive a restart: the journal keeps them on disk.
    nonces = NonceCache(journaled=True)
    journal = NonceJournal(settings.data_dir / "nonces", nonces.drain, nonces.restore)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await to_thread.run_sync(journal.start)
        if service.notifier is not None:
            service.notifier.start()
        service.builds.start()
        try:
            yield
        finally:
            await to_thread.run_sync(service.builds.stop)
            if service.notifier is not None:
                service.notifier.stop()
            await to_thread.run_sync(journal.stop)

    api = mount_api(
        service.sessions,
        service.instance.id,
        service.registry.storage,
        rate_per_key=settings.api_rate_per_key or None,
        on_task_queued=service.builds.pool.wake,
        secret_cache_seconds=settings.api_key_cache_seconds,
        nonces=nonces,
    )
    routes = [
        *registry_routes(service.registry),
        Route("/healthz", _healthz, methods=["GET", "HEAD"]),
        _metrics_route(service.metrics),
        *extra_routes,
        *api,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    # The API's requests skip even Starlette's error layer (see RpcFastPath).
    app.middleware_stack = RpcFastPath(app.build_middleware_stack(), api)
    app.state.service = service
    return app
