"""Instances, namespaces and repositories, with ACR-shaped ids and fields.

One instance (``cri-...``) stands for the embedded registry. A namespace
(``crn-...``) is the first path component of an image name, a repository
(``crr-...``) the rest: ``ns/app`` is repository ``app`` in namespace ``ns``.
Times are epoch milliseconds, as the API reports them.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from artifactd.errors import RecordExistsError, RecordNotFoundError
from artifactd.store.db import Base

NORMAL = "NORMAL"
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int = 16) -> str:
    """An id in ACR's shape: a prefix, then lower-case letters and digits."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def now_ms() -> int:
    return int(time.time() * 1000)


class Instance(Base):
    """The registry instance; ``endpoint`` is the host ``docker login`` uses."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    region_id: Mapped[str] = mapped_column(String(64), default="local")
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    specification: Mapped[str] = mapped_column(
        String(32), default="Enterprise_Advanced"
    )
    endpoint: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[int] = mapped_column(Integer)
    modified_at: Mapped[int] = mapped_column(Integer)


class Namespace(Base):
    """A namespace and the defaults of repositories created in it on push."""

    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("instances.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=NORMAL)
    auto_create_repo: Mapped[bool] = mapped_column(Boolean, default=True)
    default_repo_type: Mapped[str] = mapped_column(String(16), default="PRIVATE")
    # JSON object: {RepoType, TagImmutability, ArtifactBuildRuleParameters}.
    default_repo_configuration: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[int] = mapped_column(Integer)
    modified_at: Mapped[int] = mapped_column(Integer)

    @property
    def repo_configuration(self) -> dict[str, Any]:
        return json.loads(self.default_repo_configuration or "{}")


class Repository(Base):
    """A repository: ``namespace_name/name`` in the registry."""

    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64), index=True)
    namespace_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("namespaces.id", ondelete="CASCADE")
    )
    namespace_name: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(255))
    repo_type: Mapped[str] = mapped_column(String(16), default="PRIVATE")
    status: Mapped[str] = mapped_column(String(16), default=NORMAL)
    build_type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    summary: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    tag_immutability: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(Integer)
    modified_at: Mapped[int] = mapped_column(Integer)

    @property
    def path(self) -> str:
        """The repository's name in the registry: ``namespace/name``."""
        return f"{self.namespace_name}/{self.name}"


# Instances ---------------------------------------------------------------


def ensure_instance(session: Session, name: str, region_id: str) -> Instance:
    """The instance, created on first use; later calls return the same one."""
    instance = session.scalars(select(Instance).order_by(Instance.created_at)).first()
    if instance is not None:
        return instance
    now = now_ms()
    instance = Instance(
        id=new_id("cri-"),
        name=name,
        region_id=region_id,
        created_at=now,
        modified_at=now,
    )
    session.add(instance)
    session.flush()
    return instance


def get_instance(session: Session, instance_id: str) -> Instance:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise RecordNotFoundError(f"instance {instance_id} does not exist")
    return instance


def list_instances(session: Session) -> Sequence[Instance]:
    return session.scalars(select(Instance).order_by(Instance.created_at)).all()


# Namespaces --------------------------------------------------------------


def create_namespace(
    session: Session,
    instance_id: str,
    name: str,
    auto_create_repo: bool = True,
    default_repo_type: str = "PRIVATE",
    configuration: dict[str, Any] | None = None,
) -> Namespace:
    """Add a namespace; RecordExistsError if the name is taken."""
    if find_namespace(session, instance_id, name=name) is not None:
        raise RecordExistsError(f"namespace {name} already exists")
    now = now_ms()
    namespace = Namespace(
        id=new_id("crn-"),
        instance_id=instance_id,
        name=name,
        auto_create_repo=auto_create_repo,
        default_repo_type=default_repo_type,
        default_repo_configuration=json.dumps(configuration or {}),
        created_at=now,
        modified_at=now,
    )
    # A savepoint keeps the caller's transaction usable if a concurrent
    # request created the same name first.
    try:
        with session.begin_nested():
            session.add(namespace)
    except IntegrityError as exc:
        raise RecordExistsError(f"namespace {name} already exists") from exc
    return namespace


def ensure_namespace(session: Session, instance_id: str, name: str) -> Namespace:
    """The namespace ``name``, created with defaults if missing; race-safe."""
    namespace = find_namespace(session, instance_id, name=name)
    if namespace is not None:
        return namespace
    try:
        return create_namespace(session, instance_id, name)
    except RecordExistsError:
        return get_namespace(session, instance_id, name=name)


def find_namespace(
    session: Session,
    instance_id: str,
    namespace_id: str | None = None,
    name: str | None = None,
) -> Namespace | None:
    query = select(Namespace).where(Namespace.instance_id == instance_id)
    if namespace_id is not None:
        query = query.where(Namespace.id == namespace_id)
    if name is not None:
        query = query.where(Namespace.name == name)
    return session.scalars(query).first()


def get_namespace(
    session: Session,
    instance_id: str,
    namespace_id: str | None = None,
    name: str | None = None,
) -> Namespace:
    namespace = find_namespace(session, instance_id, namespace_id, name)
    if namespace is None:
        raise RecordNotFoundError(f"namespace {namespace_id or name} does not exist")
    return namespace


def list_namespaces(
    session: Session,
    instance_id: str,
    offset: int,
    limit: int,
    name: str | None = None,
    status: str | None = None,
) -> tuple[Sequence[Namespace], int]:
    """One page of namespaces, oldest first, and the number that match."""
    where = [Namespace.instance_id == instance_id]
    if name is not None:
        where.append(Namespace.name == name)
    if status is not None:
        where.append(Namespace.status == status)
    total = session.scalar(select(func.count()).select_from(Namespace).where(*where))
    query = (
        select(Namespace)
        .where(*where)
        .order_by(Namespace.created_at, Namespace.id)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(query).all(), int(total or 0)


def delete_namespace(session: Session, namespace: Namespace) -> None:
    """Delete a namespace; RecordExistsError while it still holds repositories."""
    count = session.scalar(
        select(func.count())
        .select_from(Repository)
        .where(Repository.namespace_id == namespace.id)
    )
    if count:
        raise RecordExistsError(
            f"namespace {namespace.name} holds {count} repositories"
        )
    session.delete(namespace)
    session.flush()


# Repositories ------------------------------------------------------------


def create_repository(
    session: Session,
    namespace: Namespace,
    name: str,
    repo_type: str = "PRIVATE",
    summary: str = "",
    detail: str = "",
    tag_immutability: bool = False,
) -> Repository:
    """Add a repository to a namespace; RecordExistsError if the name is taken."""
    if find_repository(session, namespace.instance_id, namespace.name, name):
        raise RecordExistsError(f"repository {namespace.name}/{name} already exists")
    now = now_ms()
    repository = Repository(
        id=new_id("crr-"),
        instance_id=namespace.instance_id,
        namespace_id=namespace.id,
        namespace_name=namespace.name,
        name=name,
        repo_type=repo_type,
        summary=summary,
        detail=detail,
        tag_immutability=tag_immutability,
        created_at=now,
        modified_at=now,
    )
    try:
        with session.begin_nested():
            session.add(repository)
    except IntegrityError as exc:
        raise RecordExistsError(f"repository {repository.path} already exists") from exc
    return repository


def find_repository(
    session: Session, instance_id: str, namespace_name: str, name: str
) -> Repository | None:
    query = select(Repository).where(
        Repository.instance_id == instance_id,
        Repository.namespace_name == namespace_name,
        Repository.name == name,
    )
    return session.scalars(query).first()


def get_repository(
    session: Session,
    instance_id: str,
    repo_id: str | None = None,
    namespace_name: str | None = None,
    name: str | None = None,
) -> Repository:
    """A repository by id, or by namespace and name; RecordNotFoundError if absent."""
    repository: Repository | None
    if repo_id is not None:
        repository = session.get(Repository, repo_id)
        if repository is not None and repository.instance_id != instance_id:
            repository = None
    else:
        repository = find_repository(
            session, instance_id, namespace_name or "", name or ""
        )
    if repository is None:
        raise RecordNotFoundError(f"repository {repo_id or name} does not exist")
    return repository


def list_repositories(
    session: Session,
    instance_id: str,
    offset: int,
    limit: int,
    namespace_name: str | None = None,
    name: str | None = None,
    status: str | None = None,
) -> tuple[Sequence[Repository], int]:
    """One page of repositories, oldest first, and the number that match."""
    where = [Repository.instance_id == instance_id]
    if namespace_name is not None:
        where.append(Repository.namespace_name == namespace_name)
    if name is not None:
        where.append(Repository.name == name)
    if status is not None:
        where.append(Repository.status == status)
    total = session.scalar(select(func.count()).select_from(Repository).where(*where))
    query = (
        select(Repository)
        .where(*where)
        .order_by(Repository.created_at, Repository.id)
        .offset(offset)
        .limit(limit)
    )
    return session.scalars(query).all(), int(total or 0)


def delete_repository(session: Session, repository: Repository) -> None:
    session.delete(repository)
    session.flush()
