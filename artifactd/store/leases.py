"""Leases on build tasks: which worker runs a task, and until when.

A worker claims a task by moving it from PENDING to BUILDING and taking a
lease, then renews the lease while it works. A task whose lease ran out (its
worker died, or was stopped and released it) is BUILDING with no live owner
and can be claimed again, so a killed process loses no work. Claims are
conditional updates: two workers racing for one task cannot both win.

Order of claims: higher priority first, then first queued first.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
    and_,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from artifactd.errors import InvalidStateError
from artifactd.store.builds import BUILDING, PENDING, BuildTask, transition
from artifactd.store.db import Base


class TaskLease(Base):
    __tablename__ = "build_task_leases"

    task_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("build_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(Float)
    #: How many times a worker has taken this task (1 on the first run).
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def claim_next_task(
    session: Session, owner: str, lease_seconds: float
) -> BuildTask | None:
    """Take the next task to run, or None; the caller commits."""
    now = time.time()
    candidates = (
        select(BuildTask)
        .outerjoin(TaskLease, TaskLease.task_id == BuildTask.id)
        .where(
            or_(
                BuildTask.status == PENDING,
                and_(
                    BuildTask.status == BUILDING,
                    or_(TaskLease.task_id.is_(None), TaskLease.expires_at < now),
                ),
            )
        )
        .order_by(BuildTask.priority.desc(), BuildTask.queued_at, BuildTask.id)
        .limit(8)
    )
    for task in session.scalars(candidates).all():
        if _take(session, task, owner, now, now + lease_seconds):
            return task
    return None


def _take(
    session: Session, task: BuildTask, owner: str, now: float, until: float
) -> bool:
    if task.status == PENDING:
        try:
            transition(session, task, BUILDING)
        except InvalidStateError:
            return False  # another worker, or a cancel, got there first
        lease = session.get(TaskLease, task.id)
        if lease is None:
            session.add(
                TaskLease(task_id=task.id, owner=owner, expires_at=until, attempts=1)
            )
        else:
            lease.owner, lease.expires_at = owner, until
            lease.attempts += 1
        session.flush()
        return True
    lease = session.get(TaskLease, task.id)
    if lease is None:
        session.add(
            TaskLease(task_id=task.id, owner=owner, expires_at=until, attempts=1)
        )
        session.flush()
        return True
    result = session.execute(
        update(TaskLease)
        .where(
            TaskLease.task_id == task.id,
            TaskLease.expires_at < now,
            TaskLease.owner == lease.owner,
        )
        .values(owner=owner, expires_at=until, attempts=TaskLease.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(lease)
    return True


def renew_lease(
    session: Session, task_id: str, owner: str, lease_seconds: float
) -> str | None:
    """Extend a lease this owner holds; return the task's status, or None when
    the lease was lost (it expired and another worker took the task)."""
    result = session.execute(
        update(TaskLease)
        .where(TaskLease.task_id == task_id, TaskLease.owner == owner)
        .values(expires_at=time.time() + lease_seconds)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.scalar(select(BuildTask.status).where(BuildTask.id == task_id))


def task_status(session: Session, task_id: str) -> str | None:
    return session.scalar(select(BuildTask.status).where(BuildTask.id == task_id))


def release_lease(session: Session, task_id: str, owner: str) -> None:
    """Give a running task back (on shutdown): it is claimable at once."""
    session.execute(
        update(TaskLease)
        .where(TaskLease.task_id == task_id, TaskLease.owner == owner)
        .values(expires_at=0.0)
        .execution_options(synchronize_session=False)
    )


def drop_lease(session: Session, task_id: str) -> None:
    session.execute(delete(TaskLease).where(TaskLease.task_id == task_id))


def attempts(session: Session, task_id: str) -> int:
    lease = session.get(TaskLease, task_id)
    return lease.attempts if lease is not None else 0
