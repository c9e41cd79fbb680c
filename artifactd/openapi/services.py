"""What the API handlers need from the rest of the system, in one object.

The store is reached through a session factory; tags come from the
registry's storage through the small :class:`TagSource` protocol; access key
secrets are cached for a few seconds, so signing checks do not hit the
database on every request while a deleted key still stops working promptly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from artifactd.errors import RecordNotFoundError
from artifactd.openapi.errors import BusinessError
from artifactd.store import builds, keys, repositories
from artifactd.store.repositories import Namespace, Repository


@dataclass(frozen=True)
class TagInfo:
    """One tag as the registry stores it."""

    tag: str
    digest: str
    config_digest: str
    size: int
    media_type: str
    created_ms: int
    updated_ms: int


class TagSource(Protocol):
    """Read and delete tags of a repository (``namespace/name``)."""

    def list_tags(self, repository: str) -> list[str]:
        """Every tag name of the repository, in the source's own order."""
        ...

    def get_tag(self, repository: str, tag: str) -> TagInfo | None: ...

    def delete_tag(self, repository: str, tag: str) -> bool:
        """Remove the tag; False when it did not exist."""
        ...


class ApiServices:
    """The store, the registry's tags and the access keys, for the handlers.

    ``run_inline`` runs store-only handlers on the event loop instead of a
    worker thread: right for a local SQLite store, whose reads take
    microseconds; a network database should leave it False. Actions that
    reach the registry always run in a worker thread.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        instance_id: str,
        tags: TagSource,
        run_inline: bool = False,
        secret_cache_seconds: float = 5.0,
        on_task_queued: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.instance_id = instance_id
        self.tags = tags
        self.run_inline = run_inline
        self._cache_seconds = secret_cache_seconds
        self.task_reader = builds.TaskReader(sessions.kw["bind"])
        self._secrets: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()
        self._on_task_queued = on_task_queued

    def task_queued(self) -> None:
        """A build task was queued: let the workers know now."""
        if self._on_task_queued is not None:
            self._on_task_queued()

    def lookup_secret(self, access_key_id: str) -> str | None:
        """The secret of an enabled access key, or None; cached briefly."""
        now = time.monotonic()
        cached = self._secrets.get(access_key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.sessions() as session:
            secret = keys.lookup_secret(session, access_key_id)
        with self._lock:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[access_key_id] = (secret, now + self._cache_seconds)
        return secret

    def check_instance(self, instance_id: str) -> None:
        if instance_id != self.instance_id:
            raise BusinessError("INSTANCE_NOT_EXIST")

    def namespace(
        self,
        session: Session,
        instance_id: str,
        namespace_id: str | None = None,
        name: str | None = None,
    ) -> Namespace:
        try:
            return repositories.get_namespace(session, instance_id, namespace_id, name)
        except RecordNotFoundError:
            raise BusinessError("NAMESPACE_NOT_EXIST") from None

    def repository(
        self,
        session: Session,
        instance_id: str,
        repo_id: str | None = None,
        namespace_name: str | None = None,
        name: str | None = None,
    ) -> Repository:
        try:
            return repositories.get_repository(
                session, instance_id, repo_id, namespace_name, name
            )
        except RecordNotFoundError:
            raise BusinessError("REPO_NOT_EXIST") from None

    def tag(self, repository: Repository, tag: str) -> TagInfo:
        info = self.tags.get_tag(repository.path, tag)
        if info is None:
            raise BusinessError("TAG_NOT_EXIST")
        return info
