"""The database: declarative base, engine and session factory.

SQLite in the data directory by default (WAL journal, foreign keys on, a busy
timeout so concurrent writers wait instead of failing); any SQLAlchemy URL,
such as PostgreSQL, for scale-out deployments.

Every SQLite transaction opens with ``BEGIN IMMEDIATE``, taking the write lock
up front. Almost every transaction here reads and then writes (find, then
create; pick a task, then claim it); under the default deferred ``BEGIN`` two
of them racing fail with "database is locked" at once, since SQLite cannot
upgrade a read snapshot that another writer has made stale, and the busy
timeout does not apply. Taken up front, the lock is simply waited for. Reads
outside the ORM (the API's task reader) stay lock-free in autocommit.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

DATABASE_FILE = "artifactd.db"


class Base(DeclarativeBase):
    """Base class of every model in the store."""


def sqlite_url(data_dir: str | os.PathLike[str]) -> str:
    """The URL of the SQLite database inside ``data_dir``."""
    return f"sqlite:///{Path(data_dir) / DATABASE_FILE}"


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections get WAL and foreign keys."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_sqlite(dbapi_connection, _record) -> None:
    # The driver's own implicit BEGIN is turned off: _begin_immediate opens
    # each transaction instead, and savepoints then nest properly.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Reads are served from memory: the database file is mapped (up to 1 GiB,
    # address space, not resident memory) and each connection caches 16 MiB.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (models are imported here)."""
    from artifactd.store import (  # noqa: F401
        builds,
        keys,
        layer_cache,
        leases,
        repositories,
    )

    Base.metadata.create_all(engine)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def open_data_dir(data_dir: str | os.PathLike[str]) -> sessionmaker[Session]:
    """Sessions on the SQLite store of ``data_dir``, creating it on first use.

    The folder is made readable by the service user only (0700) and the
    database file 0600 (SQLite gives its journal files the same mode), since
    it holds the access key secrets.
    """
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    database = path / DATABASE_FILE
    if not database.exists():
        database.touch(mode=0o600)
    database.chmod(0o600)
    engine = create_db_engine(sqlite_url(path))
    create_schema(engine)
    return session_factory(engine)
