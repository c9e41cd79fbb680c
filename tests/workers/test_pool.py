"""The worker pool: priorities, cancel, leases after a crash, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from artifactd.store import builds, leases
from artifactd.store.builds import RuleParameters
from artifactd.store.db import create_db_engine, create_schema, session_factory
from artifactd.workers.pool import WorkerPool


@pytest.fixture
def sessions(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    create_schema(engine)
    yield session_factory(engine)
    engine.dispose()


def add_task(sessions, tag: str, priority: int = 1) -> str:
    with sessions.begin() as session:
        task = builds.create_task(
            session, "cri-test", "crr-repo", tag, RuleParameters(priority=priority)
        )
        return task.id


def status_of(sessions, task_id: str) -> str:
    with sessions() as session:
        return session.get(builds.BuildTask, task_id).status


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def succeed(sessions):
    def finish(task_id: str, status: str = builds.SUCCESS) -> None:
        with sessions.begin() as session:
            builds.transition(session, session.get(builds.BuildTask, task_id), status)

    return finish


def test_higher_priority_first_then_first_queued(sessions):
    order: list[str] = []
    finish = succeed(sessions)
    low = add_task(sessions, "low", 1)
    first = add_task(sessions, "first", 3)
    second = add_task(sessions, "second", 3)
    top = add_task(sessions, "top", 5)

    def runner(task_id, cancel):
        order.append(task_id)
        finish(task_id)

    pool = WorkerPool(sessions, runner, size=1, poll_seconds=0.05)
    pool.start()
    try:
        wait_for(lambda: len(order) == 4)
    finally:
        pool.stop()
    assert order == [top, first, second, low]
    assert all(status_of(sessions, t) == builds.SUCCESS for t in order)


def test_cancel_reaches_a_running_build_within_two_seconds(sessions):
    started, stopped = threading.Event(), []
    task_id = add_task(sessions, "slow")

    def runner(task_id, cancel):
        started.set()
        if cancel.wait(10):
            stopped.append(time.monotonic())

    pool = WorkerPool(sessions, runner, size=1, poll_seconds=0.05)
    pool.start()
    try:
        assert started.wait(5)
        with sessions.begin() as session:
            builds.cancel_task(session, "cri-test", task_id)
        canceled_at = time.monotonic()
        wait_for(lambda: stopped)
    finally:
        pool.stop()
    assert stopped[0] - canceled_at < 2.0
    assert status_of(sessions, task_id) == builds.CANCELED


def test_a_task_of_a_dead_worker_runs_again_after_its_lease(sessions):
    task_id = add_task(sessions, "orphan")
    with sessions.begin() as session:
        claimed = leases.claim_next_task(session, "dead-worker", lease_seconds=0.5)
        assert claimed.id == task_id
    finish, ran = succeed(sessions), []

    def runner(task_id, cancel):
        ran.append(task_id)
        finish(task_id)

    pool = WorkerPool(sessions, runner, size=1, poll_seconds=0.1)
    pool.start()
    try:
        wait_for(lambda: ran)
    finally:
        pool.stop()
    assert ran == [task_id]
    assert status_of(sessions, task_id) == builds.SUCCESS
    with sessions() as session:
        lines, _ = builds.list_logs(session, task_id, 0, 10)
    assert "Resuming: the previous worker stopped (attempt 2)" in [
        line.message for line in lines
    ]


def test_a_live_lease_is_not_taken(sessions):
    task_id = add_task(sessions, "busy")
    with sessions.begin() as session:
        assert leases.claim_next_task(session, "worker-a", 30).id == task_id
    with sessions.begin() as session:
        assert leases.claim_next_task(session, "worker-b", 30) is None


def test_shutdown_releases_running_builds(sessions):
    started = threading.Event()
    task_id = add_task(sessions, "long")

    def runner(task_id, cancel):
        started.set()
        cancel.wait(10)

    pool = WorkerPool(sessions, runner, size=1, poll_seconds=0.05)
    pool.start()
    assert started.wait(5)
    pool.stop()
    assert status_of(sessions, task_id) == builds.BUILDING
    with sessions.begin() as session:
        again = leases.claim_next_task(session, "next-start", 30)
    assert again is not None and again.id == task_id


def test_a_crashing_runner_fails_its_task_and_the_pool_goes_on(sessions):
    bad = add_task(sessions, "bad", 2)
    good = add_task(sessions, "good", 1)
    finish = succeed(sessions)

    def runner(task_id, cancel):
        if task_id == bad:
            raise RuntimeError("boom")
        finish(task_id)

    pool = WorkerPool(sessions, runner, size=1, poll_seconds=0.05)
    pool.start()
    try:
        wait_for(lambda: status_of(sessions, good) == builds.SUCCESS)
    finally:
        pool.stop()
    assert status_of(sessions, bad) == builds.FAILED
