"""Artifact build rules, build tasks and their logs: models and data access.

A rule says "accelerate every image pushed into this scope" (one repository,
or every repository of a namespace). A task is one build of one source tag;
its status only moves forward along the state machine below, and the times
it records are epoch seconds, as the API reports them.

    PENDING --> BUILDING --> SUCCESS
       |           |-------> FAILED
       |           '-------> CANCELED
       |--> CANCELED
       '--> FAILED

Log lines are numbered from 1 per task, in the order they were written.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from artifactd.errors import (
    InvalidStateError,
    RecordExistsError,
    RecordNotFoundError,
    StoreError,
)
from artifactd.store.db import Base
from artifactd.store.repositories import new_id

PENDING = "PENDING"
BUILDING = "BUILDING"
SUCCESS = "SUCCESS"
FAILED = "FAILED"
CANCELED = "CANCELED"
TASK_STATUSES = (PENDING, BUILDING, SUCCESS, FAILED, CANCELED)
FINISHED = frozenset({SUCCESS, FAILED, CANCELED})
_TRANSITIONS = {
    PENDING: frozenset({BUILDING, CANCELED, FAILED}),
    BUILDING: frozenset({SUCCESS, FAILED, CANCELED}),
}

ACCELERATED_IMAGE = "ACCELERATED_IMAGE"
IMAGE_TO_ACCELERATED_IMAGE = "IMAGE_TO_ACCELERATED_IMAGE"
IMAGE_TO_ECI_ACCELERATED_IMAGE = "IMAGE_TO_ECI_ACCELERATED_IMAGE"
SCOPE_REPOSITORY = "REPOSITORY"
SCOPE_NAMESPACE = "NAMESPACE"
TARGET_SUFFIX = "_accelerated"

# A priority file lists paths to prefetch; thousands are plenty, and the cap
# keeps one rule from bloating every task row.
MAX_PRIORITY_PATHS = 4096


def target_tag(source_tag: str) -> str:
    """The tag of the accelerated image built from ``source_tag``."""
    return source_tag + TARGET_SUFFIX


def decode_priority_file(encoded: str) -> tuple[str, ...]:
    """The absolute paths listed by a base64 PriorityFile, in order.

    Raises ValueError with a sentence naming the problem: not base64, not
    UTF-8, a relative path, a NUL byte, or too many paths.
    """
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("does not decode to UTF-8 text") from None
    paths = tuple(line for line in text.splitlines() if line.strip())
    for path in paths:
        if not path.startswith("/") or "\0" in path:
            raise ValueError(f"lists {path!r}, which is not an absolute path")
    if len(paths) > MAX_PRIORITY_PATHS:
        raise ValueError(f"lists more than {MAX_PRIORITY_PATHS} paths")
    return paths


class BuildRule(Base):
    """Accelerate every image pushed into a repository or a namespace."""

    __tablename__ = "build_rules"
    __table_args__ = (
        UniqueConstraint("instance_id", "artifact_type", "scope_type", "scope_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64), index=True)
    artifact_type: Mapped[str] = mapped_column(String(32), default=ACCELERATED_IMAGE)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(64))
    image_index_only: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    priority_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


class BuildTask(Base):
    """One build of one source tag into its accelerated target."""

    __tablename__ = "build_tasks"
    __table_args__ = (
        Index("ix_build_tasks_instance_created", "instance_id", "created_at"),
        Index("ix_build_tasks_repo_created", "source_repo_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    build_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    priority: Mapped[int] = mapped_column(Integer, default=1)
    image_index_only: Mapped[bool] = mapped_column(Boolean, default=False)
    priority_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_repo_id: Mapped[str] = mapped_column(String(64))
    source_tag: Mapped[str] = mapped_column(String(128))
    source_digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    source_size: Mapped[int] = mapped_column(Integer, default=0)
    source_layers: Mapped[int] = mapped_column(Integer, default=0)
    target_repo_id: Mapped[str] = mapped_column(String(64))
    target_tag: Mapped[str] = mapped_column(String(128))
    target_size: Mapped[int] = mapped_column(Integer, default=0)
    target_layers: Mapped[int] = mapped_column(Integer, default=0)
    platform: Mapped[str] = mapped_column(String(64), default="")
    #: The accelerated image's digest once built (what a re-push can reuse).
    target_digest: Mapped[str | None] = mapped_column(String(80), nullable=True)
    #: Sub-second enqueue time: tasks of one priority run first-queued first.
    queued_at: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[int] = mapped_column(Integer, default=0)
    end_time: Mapped[int] = mapped_column(Integer, default=0)


class BuildTaskLog(Base):
    """One line of a task's log, numbered from 1."""

    __tablename__ = "build_task_logs"
    __table_args__ = (UniqueConstraint("task_id", "line_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("build_tasks.id", ondelete="CASCADE")
    )
    line_number: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class RuleParameters:
    """What a rule hands to each task it creates."""

    priority: int = 1
    priority_file: str | None = None
    image_index_only: bool = False


def _now() -> int:
    return int(time.time())


# Rules -------------------------------------------------------------------


def create_rule(
    session: Session,
    instance_id: str,
    scope_type: str,
    scope_id: str,
    parameters: RuleParameters,
) -> BuildRule:
    """Add a rule; RecordExistsError if the scope already has one."""
    exists = find_rule(session, instance_id, ACCELERATED_IMAGE, scope_type, scope_id)
    if exists is not None:
        raise RecordExistsError(f"scope {scope_id} already has rule {exists.id}")
    now = _now()
    rule = BuildRule(
        id=new_id("crabr-"),
        instance_id=instance_id,
        artifact_type=ACCELERATED_IMAGE,
        scope_type=scope_type,
        scope_id=scope_id,
        image_index_only=parameters.image_index_only,
        priority=parameters.priority,
        priority_file=parameters.priority_file,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    try:
        session.flush()
    except IntegrityError as exc:
        raise RecordExistsError(f"scope {scope_id} already has a rule") from exc
    return rule


def get_rule(session: Session, instance_id: str, rule_id: str) -> BuildRule:
    rule = session.get(BuildRule, rule_id)
    if rule is None or rule.instance_id != instance_id:
        raise RecordNotFoundError(f"build rule {rule_id} does not exist")
    return rule


def find_rule(
    session: Session,
    instance_id: str,
    artifact_type: str,
    scope_type: str,
    scope_id: str,
) -> BuildRule | None:
    query = select(BuildRule).where(
        BuildRule.instance_id == instance_id,
        BuildRule.artifact_type == artifact_type,
        BuildRule.scope_type == scope_type,
        BuildRule.scope_id == scope_id,
    )
    return session.scalars(query).first()


def list_rules(
    session: Session,
    instance_id: str,
    scope_type: str | None,
    scope_id: str | None,
    offset: int,
    limit: int,
) -> tuple[Sequence[BuildRule], int]:
    """One page of rules, oldest first, and the number of matching rules."""
    where = [BuildRule.instance_id == instance_id]
    if scope_type is not None:
        where.append(BuildRule.scope_type == scope_type)
    if scope_id is not None:
        where.append(BuildRule.scope_id == scope_id)
    total = session.scalar(select(func.count()).select_from(BuildRule).where(*where))
    query = (
        select(BuildRule)
        .where(*where)
        .order_by(BuildRule.created_at, BuildRule.id)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(query).all(), int(total or 0)


def update_rule(
    session: Session, instance_id: str, rule_id: str, parameters: RuleParameters
) -> BuildRule:
    rule = get_rule(session, instance_id, rule_id)
    rule.priority = parameters.priority
    rule.priority_file = parameters.priority_file
    rule.image_index_only = parameters.image_index_only
    rule.updated_at = _now()
    session.flush()
    return rule


def delete_rule(session: Session, instance_id: str, rule_id: str) -> None:
    session.delete(get_rule(session, instance_id, rule_id))
    session.flush()


def delete_rules_for_scope(session: Session, instance_id: str, scope_id: str) -> int:
    """Remove the rules of a deleted repository or namespace; returns how many."""
    result = session.execute(
        delete(BuildRule).where(
            BuildRule.instance_id == instance_id, BuildRule.scope_id == scope_id
        )
    )
    return int(result.rowcount or 0)


def rule_for_repository(
    session: Session, instance_id: str, repo_id: str, namespace_id: str | None
) -> BuildRule | None:
    """The rule covering a repository: its own first, else its namespace's."""
    rule = find_rule(session, instance_id, ACCELERATED_IMAGE, SCOPE_REPOSITORY, repo_id)
    if rule is None and namespace_id is not None:
        rule = find_rule(
            session, instance_id, ACCELERATED_IMAGE, SCOPE_NAMESPACE, namespace_id
        )
    return rule


# Tasks -------------------------------------------------------------------


def create_task(
    session: Session,
    instance_id: str,
    repo_id: str,
    tag: str,
    parameters: RuleParameters,
    build_type: str = IMAGE_TO_ACCELERATED_IMAGE,
    rule_id: str | None = None,
    source_digest: str | None = None,
) -> BuildTask:
    """Add a PENDING task that builds ``repo_id:tag`` into ``tag_accelerated``."""
    task = BuildTask(
        id=new_id("i2a-"),
        instance_id=instance_id,
        rule_id=rule_id,
        build_type=build_type,
        status=PENDING,
        priority=parameters.priority,
        image_index_only=parameters.image_index_only,
        priority_file=parameters.priority_file,
        source_repo_id=repo_id,
        source_tag=tag,
        source_digest=source_digest,
        source_size=0,
        source_layers=0,
        target_repo_id=repo_id,
        target_tag=target_tag(tag),
        target_size=0,
        target_layers=0,
        platform="",
        queued_at=time.time(),
        created_at=_now(),
        start_time=0,
        end_time=0,
    )
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, instance_id: str, task_id: str) -> BuildTask:
    task = session.get(BuildTask, task_id)
    if task is None or task.instance_id != instance_id:
        raise RecordNotFoundError(f"build task {task_id} does not exist")
    return task


def list_tasks(
    session: Session,
    instance_id: str,
    offset: int,
    limit: int,
    repo_id: str | None = None,
    status: str | None = None,
    created_from: int | None = None,
    created_before: int | None = None,
) -> tuple[Sequence[BuildTask], int]:
    """One page of tasks, newest first, and the number of matching tasks."""
    where = [BuildTask.instance_id == instance_id]
    if repo_id is not None:
        where.append(BuildTask.source_repo_id == repo_id)
    if status is not None:
        where.append(BuildTask.status == status)
    if created_from is not None:
        where.append(BuildTask.created_at >= created_from)
    if created_before is not None:
        where.append(BuildTask.created_at < created_before)
    total = session.scalar(select(func.count()).select_from(BuildTask).where(*where))
    query = (
        select(BuildTask)
        .where(*where)
        .order_by(
            BuildTask.created_at.desc(),
            BuildTask.queued_at.desc(),
            BuildTask.id.desc(),
        )
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(query).all(), int(total or 0)


def transition(session: Session, task: BuildTask, status: str) -> BuildTask:
    """Move a task to ``status``; InvalidStateError if the machine forbids it.

    The update is conditional on the status read, so two workers (or a worker
    and a cancel) racing on one task cannot both win.
    """
    allowed = _TRANSITIONS.get(task.status, frozenset())
    if status not in allowed:
        raise InvalidStateError(f"task {task.id} is {task.status}, cannot be {status}")
    now = _now()
    values: dict[str, object] = {"status": status}
    if status == BUILDING:
        values["start_time"] = now
    if status in FINISHED:
        values["end_time"] = now
    result = session.execute(
        update(BuildTask)
        .where(BuildTask.id == task.id, BuildTask.status == task.status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.refresh(task)
        raise InvalidStateError(f"task {task.id} changed to {task.status} meanwhile")
    session.refresh(task)
    return task


def cancel_task(session: Session, instance_id: str, task_id: str) -> BuildTask:
    """Cancel a PENDING or BUILDING task and log it; InvalidStateError otherwise."""
    task = get_task(session, instance_id, task_id)
    transition(session, task, CANCELED)
    append_log(session, task.id, "Task canceled on request")
    return task


def append_log(session: Session, task_id: str, message: str) -> int:
    """Append one line to a task's log and return its line number."""
    last = session.scalar(
        select(func.max(BuildTaskLog.line_number)).where(
            BuildTaskLog.task_id == task_id
        )
    )
    number = int(last or 0) + 1
    session.add(
        BuildTaskLog(
            task_id=task_id, line_number=number, message=message, created_at=_now()
        )
    )
    session.flush()
    return number


def list_logs(
    session: Session, task_id: str, offset: int, limit: int
) -> tuple[Sequence[BuildTaskLog], int]:
    """One page of a task's log lines, oldest first, and the number of lines."""
    where = BuildTaskLog.task_id == task_id
    total = session.scalar(select(func.count()).select_from(BuildTaskLog).where(where))
    query = (
        select(BuildTaskLog)
        .where(where)
        .order_by(BuildTaskLog.line_number)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(query).all(), int(total or 0)


#: What a task shows to API callers (GetArtifactBuildTask's fields).
_TASK_VIEW_COLUMNS = (
    "id",
    "instance_id",
    "status",
    "build_type",
    "priority",
    "start_time",
    "end_time",
    "source_repo_id",
    "source_tag",
    "source_size",
    "source_layers",
    "target_repo_id",
    "target_tag",
    "target_size",
    "target_layers",
    "platform",
)
TaskRow = namedtuple("TaskRow", _TASK_VIEW_COLUMNS)  # type: ignore[misc]


class TaskReader:
    """Reads one task by id without the ORM: the API's hottest query.

    Each thread keeps its own DBAPI connection and cursor, detached from the
    engine's pool so a busy thread pool cannot starve the pool; a connection
    that fails once is dropped and replaced. Rows carry the columns callers see,
    under the attribute names of :class:`BuildTask`, so code that shows a
    task shows a row alike.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        table = BuildTask.__table__
        compiled = (
            select(*(table.c[name] for name in _TASK_VIEW_COLUMNS))
            .where(table.c.id == bindparam("id"))
            .compile(dialect=engine.dialect)
        )
        self._sql = str(compiled)
        self._positional = engine.dialect.paramstyle in ("qmark", "numeric", "format")
        self._local = threading.local()

    def get(self, instance_id: str, task_id: str) -> TaskRow:
        """The task's row; RecordNotFoundError if no such task in the instance."""
        params: tuple | dict = (task_id,) if self._positional else {"id": task_id}
        cursor = getattr(self._local, "cursor", None) or self._connect()
        try:
            row = cursor.execute(self._sql, params).fetchone()
        except Exception as exc:
            self._local.cursor = None
            self._local.connection.close()
            raise StoreError(f"reading task {task_id} failed: {exc}") from exc
        task = TaskRow(*row) if row is not None else None
        if task is None or task.instance_id != instance_id:
            raise RecordNotFoundError(f"build task {task_id} does not exist")
        return task

    def _connect(self):
        """This thread's cursor, on a new connection (kept for the next call)."""
        connection = self._engine.raw_connection()
        connection.detach()
        # Each read on its own: a transaction left open by the first read
        # would stay open as long as the thread lives (PostgreSQL's vacuum
        # then keeps every dead row).
        self._engine.dialect.set_isolation_level(
            connection.dbapi_connection, "AUTOCOMMIT"
        )
        self._local.connection = connection
        self._local.cursor = connection.dbapi_connection.cursor()
        return self._local.cursor
