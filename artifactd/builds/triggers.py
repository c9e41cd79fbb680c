"""From a pushed manifest to a build task.

Every manifest pushed with a tag into a repository that a build rule covers
queues a task for that tag, with three exceptions:

- tags ending in ``_accelerated`` are build targets and never trigger;
- a push that supersedes a queued or running build of the same tag cancels it
  (the newer image is what the tag means now);
- a re-push of the same digest, with the same build parameters, while the
  target tag still points at the earlier result, reuses that result: the new
  task is recorded as SUCCESS at once, with a log line saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from artifactd.oci import mediatypes as mt
from artifactd.store import builds, repositories

log = logging.getLogger(__name__)

#: The digest a tag of a repository points at now, or None.
TagResolver = Callable[[str, str], str | None]


class PushEvent(Protocol):
    repository: str
    tag: str
    digest: str
    media_type: str


@dataclass(frozen=True)
class ManifestPushed:
    """A push event as the trigger needs it (the registry's may carry more)."""

    repository: str
    tag: str
    digest: str
    media_type: str


class BuildTrigger:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        instance_id: str,
        resolve_tag: TagResolver,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._instance_id = instance_id
        self._resolve_tag = resolve_tag
        self._wake = wake

    def on_push(self, event: PushEvent) -> str | None:
        """Queue (or reuse) a build for a pushed manifest; the task id, if any."""
        if not event.tag or event.tag.endswith(builds.TARGET_SUFFIX):
            return None
        if event.media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            return None
        namespace, _, name = event.repository.partition("/")
        with self._sessions.begin() as session:
            repo = repositories.find_repository(
                session, self._instance_id, namespace, name
            )
            if repo is None:
                return None
            rule = builds.rule_for_repository(
                session, self._instance_id, repo.id, repo.namespace_id
            )
            if rule is None:
                return None
            task_id, queued = self._queue(session, repo.id, rule, event)
        log.info(
            "build_triggered task_id=%s repo=%s tag=%s digest=%s queued=%s",
            task_id,
            event.repository,
            event.tag,
            event.digest,
            queued,
        )
        if queued:
            self._wake()
        return task_id

    def _queue(
        self,
        session: Session,
        repo_id: str,
        rule: builds.BuildRule,
        event: PushEvent,
    ) -> tuple[str, bool]:
        parameters = builds.RuleParameters(
            priority=rule.priority,
            priority_file=rule.priority_file,
            image_index_only=rule.image_index_only,
        )
        previous = _latest_success(session, repo_id, event.tag)
        task = builds.create_task(
            session,
            self._instance_id,
            repo_id,
            event.tag,
            parameters,
            rule_id=rule.id,
            source_digest=event.digest,
        )
        builds.append_log(
            session,
            task.id,
            f"Queued by a push of {event.repository}:{event.tag} "
            f"({event.digest}), rule {rule.id}, priority {rule.priority}",
        )
        for active in _active(session, repo_id, event.tag, exclude=task.id):
            builds.transition(session, active, builds.CANCELED)
            builds.append_log(
                session,
                active.id,
                f"Superseded by task {task.id}: the tag was pushed "
                f"again ({event.digest})",
            )
        if previous is not None and self._reusable(previous, task, event):
            _copy_result(previous, task)
            builds.transition(session, task, builds.BUILDING)
            builds.transition(session, task, builds.SUCCESS)
            builds.append_log(
                session,
                task.id,
                f"Reused the result of task {previous.id}: same "
                f"digest and parameters, {event.repository}:{task.target_tag} "
                f"already points at {previous.target_digest}",
            )
            return task.id, False
        return task.id, True

    def _reusable(
        self, previous: builds.BuildTask, task: builds.BuildTask, event: PushEvent
    ) -> bool:
        same = (
            previous.source_digest == event.digest
            and previous.build_type == task.build_type
            and (previous.priority_file or "") == (task.priority_file or "")
            and previous.image_index_only == task.image_index_only
            and previous.target_digest
        )
        if not same:
            return False
        current = self._resolve_tag(event.repository, task.target_tag)
        return current == previous.target_digest


def _latest_success(
    session: Session, repo_id: str, tag: str
) -> builds.BuildTask | None:
    query = (
        select(builds.BuildTask)
        .where(
            builds.BuildTask.source_repo_id == repo_id,
            builds.BuildTask.source_tag == tag,
            builds.BuildTask.status == builds.SUCCESS,
        )
        .order_by(builds.BuildTask.queued_at.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _active(
    session: Session, repo_id: str, tag: str, exclude: str
) -> list[builds.BuildTask]:
    query = select(builds.BuildTask).where(
        builds.BuildTask.source_repo_id == repo_id,
        builds.BuildTask.source_tag == tag,
        builds.BuildTask.status.in_((builds.PENDING, builds.BUILDING)),
        builds.BuildTask.id != exclude,
    )
    return list(session.scalars(query))


def _copy_result(previous: builds.BuildTask, task: builds.BuildTask) -> None:
    for field in (
        "source_size",
        "source_layers",
        "target_digest",
        "target_size",
        "target_layers",
    ):
        setattr(task, field, getattr(previous, field))
