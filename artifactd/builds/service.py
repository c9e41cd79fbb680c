"""Running build tasks: from a task row to a finished build, logged.

:class:`BuildService` is the worker pool's task runner. It reads the task and
its repository, builds through the registry (embedded or external), writes
log lines as it goes, and records SUCCESS or FAILED with the reason. A task
canceled meanwhile stays CANCELED; one stopped by a shutdown is left to the
pool, which releases it for the next start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from artifactd.builds.pipeline import BuildOutcome, BuildRequest, run_build
from artifactd.errors import (
    ArtifactdError,
    ConversionCanceled,
    InvalidStateError,
    RegistryError,
)
from artifactd.formats.estargz import BuildOptions
from artifactd.formats.image import ImageSink, ImageSource, LayerCache
from artifactd.metrics import Metrics
from artifactd.store import builds, repositories

log = logging.getLogger(__name__)

#: Opens the repository ``namespace/name`` for reading and writing images.
RepositoryOpener = Callable[[str], tuple[ImageSource, ImageSink]]


class TaskLog:
    """Appends a task's log lines, each in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session], task_id: str) -> None:
        self._sessions = sessions
        self._task_id = task_id

    def __call__(self, message: str) -> None:
        with self._sessions.begin() as session:
            builds.append_log(session, self._task_id, message)


@dataclass(frozen=True)
class RetryPolicy:
    """Task-level retries for registry errors the client calls transient."""

    attempts: int = 3
    first_delay: float = 1.0


class BuildService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        open_repository: RepositoryOpener,
        *,
        options: BuildOptions | None = None,
        cache: LayerCache | None = None,
        compress_pool: ThreadPoolExecutor | None = None,
        work_dir: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        metrics: Metrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._open = open_repository
        self._options = options or BuildOptions()
        self._cache = cache
        self._pool = compress_pool
        self._work_dir = work_dir
        self._retry = retry
        self._metrics = metrics

    def __call__(self, task_id: str, cancel: threading.Event) -> None:
        """Run one claimed (BUILDING) task to its end."""
        task_log = TaskLog(self._sessions, task_id)
        try:
            request = self._request(task_id)
        except ArtifactdError as exc:
            self._fail(task_id, task_log, str(exc))
            return
        outcome = self._build(task_id, request, task_log, cancel)
        if outcome is not None:
            self._succeed(task_id, outcome, task_log)

    def _request(self, task_id: str) -> BuildRequest:
        with self._sessions() as session:
            task = session.get(builds.BuildTask, task_id)
            if task is None:
                raise ArtifactdError(f"task {task_id} no longer exists")
            if task.image_index_only:
                raise ArtifactdError(
                    "index-only builds (ImageIndexOnly) are not supported yet"
                )
            repo = session.get(repositories.Repository, task.source_repo_id)
            if repo is None:
                raise ArtifactdError(
                    f"repository {task.source_repo_id} was deleted before the build"
                )
            prioritized = (
                builds.decode_priority_file(task.priority_file)
                if task.priority_file
                else ()
            )
            return BuildRequest(
                repository=f"{repo.namespace_name}/{repo.name}",
                source_tag=task.source_tag,
                target_tag=task.target_tag,
                source_digest=task.source_digest or "",
                prioritized_files=prioritized,
                build_type=task.build_type,
            )

    def _build(
        self,
        task_id: str,
        request: BuildRequest,
        task_log: TaskLog,
        cancel: threading.Event,
    ) -> BuildOutcome | None:
        delay = self._retry.first_delay
        for attempt in range(1, self._retry.attempts + 1):
            try:
                source, sink = self._open(request.repository)
                return run_build(
                    request,
                    source,
                    sink,
                    task_log,
                    options=self._options,
                    cancel=cancel,
                    cache=self._cache,
                    compress_pool=self._pool,
                    work_dir=self._work_dir,
                )
            except ConversionCanceled:
                return None
            except RegistryError as exc:
                if (
                    not getattr(exc, "transient", False)
                    or attempt == self._retry.attempts
                ):
                    self._fail(task_id, task_log, f"registry error: {exc}")
                    return None
                task_log(
                    f"Registry error: {exc}; retrying in {delay:.0f}s "
                    f"(attempt {attempt + 1} of {self._retry.attempts})"
                )
                if cancel.wait(delay):
                    return None
                delay *= 2
            except ArtifactdError as exc:
                self._fail(task_id, task_log, str(exc))
                return None
        return None

    def _succeed(self, task_id: str, outcome: BuildOutcome, task_log: TaskLog) -> None:
        with self._sessions.begin() as session:
            task = session.get(builds.BuildTask, task_id)
            if task is None:
                return
            task.source_digest = outcome.source.digest
            task.source_size = outcome.source.size
            task.source_layers = outcome.source.layers
            task.target_digest = outcome.target.digest
            task.target_size = outcome.target.size
            task.target_layers = outcome.target.layers
            try:
                builds.transition(session, task, builds.SUCCESS)
            except InvalidStateError:
                log.info("task_finished_after_cancel task_id=%s", task_id)
                return
            # Counted before the commit, so whoever sees SUCCESS sees the counts.
            self._count_success(outcome)
        log.info(
            "task_succeeded task_id=%s seconds=%.1f convert_seconds=%.1f",
            task_id,
            outcome.seconds,
            outcome.convert_seconds,
        )

    def _count_success(self, outcome: BuildOutcome) -> None:
        if self._metrics is None:
            return
        self._metrics.builds_finished.labels(builds.SUCCESS).inc()
        self._metrics.build_seconds.observe(outcome.seconds)
        self._metrics.layers_converted.inc(outcome.layers_converted)
        self._metrics.layer_bytes.labels("in").inc(outcome.bytes_in)
        self._metrics.layer_bytes.labels("out").inc(outcome.bytes_out)

    def _fail(self, task_id: str, task_log: TaskLog, reason: str) -> None:
        with self._sessions.begin() as session:
            task = session.get(builds.BuildTask, task_id)
            if task is None:
                return
            try:
                builds.transition(session, task, builds.FAILED)
            except InvalidStateError:
                return
            builds.append_log(session, task_id, f"Build failed: {reason}")
            if self._metrics is not None:
                self._metrics.builds_finished.labels(builds.FAILED).inc()
        log.info("task_failed task_id=%s reason=%s", task_id, reason)
