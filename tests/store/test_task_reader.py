"""The API's task reader on both stores: fresh reads, no transaction left open."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from artifactd.errors import RecordNotFoundError
from artifactd.store import builds
from artifactd.store.builds import RuleParameters
from artifactd.store.db import create_db_engine, create_schema, session_factory
from tests.conftest import require

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def postgres_database():
    """A new, empty database on the local PostgreSQL; dropped afterwards."""
    name = f"artifactd_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(f"{POSTGRES}/postgres").execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # no server: a skip here, a failure in CI
        admin.dispose()
        require(False, f"PostgreSQL on 127.0.0.1:5432 ({exc.__class__.__name__})")
    return admin, name


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        create_schema(engine)
        yield engine
        engine.dispose()
        return
    admin, name = postgres_database()
    engine = create_db_engine(f"{POSTGRES}/{name}")
    create_schema(engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_reads_see_each_commit_and_hold_no_transaction_open(engine):
    sessions = session_factory(engine)
    with sessions.begin() as session:
        task = builds.create_task(
            session, "cri-test", "crr-repo", "v1", RuleParameters(priority=3)
        )
    reader = builds.TaskReader(engine)
    row = reader.get("cri-test", task.id)
    assert (row.status, row.priority, row.target_tag) == (
        "PENDING",
        3,
        "v1_accelerated",
    )

    # A worker moves the task on: the reader's next call sees it.
    with sessions.begin() as session:
        builds.transition(
            session, session.get(builds.BuildTask, task.id), builds.BUILDING
        )
    assert reader.get("cri-test", task.id).status == builds.BUILDING

    with pytest.raises(RecordNotFoundError):
        reader.get("cri-other", task.id)  # another instance's task
    with pytest.raises(RecordNotFoundError):
        reader.get("cri-test", "i2a-missing")

    if engine.dialect.name == "postgresql":
        # An open transaction would hold back vacuum for as long as the
        # server runs: every read must end its own.
        with engine.connect() as connection:
            idle = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                    " current_database() AND state = 'idle in transaction'"
                )
            ).scalar()
        assert idle == 0
