"""The in-process pool of build workers.

A fixed number of threads claim tasks from the store (highest priority first),
so a burst of pushes queues in the database instead of in memory. A monitor
thread renews each running task's lease and watches its status: when a task is
canceled through the API, its cancel event is set and the build stops at the
next block of source bytes. On shutdown the running builds are stopped and
their leases released, so the next start (or another replica) runs them again.

The pool knows nothing about images: it hands each claimed task id, with its
cancel event, to a :class:`TaskRunner`, which records the outcome.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from artifactd.errors import InvalidStateError
from artifactd.store import builds, leases

log = logging.getLogger(__name__)

TaskRunner = Callable[[str, threading.Event], None]


@dataclass
class _Running:
    task_id: str
    cancel: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False  # canceled because the pool shuts down


class WorkerPool:
    """``size`` worker threads running build tasks from the store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        runner: TaskRunner,
        *,
        size: int = 2,
        lease_seconds: float = 15.0,
        poll_seconds: float = 1.0,
        watch_seconds: float = 0.5,
    ) -> None:
        self._sessions = sessions
        self._runner = runner
        self._size = size
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._watch = watch_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wakeup = threading.Condition()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # Life cycle.

    def start(self) -> None:
        for number in range(self._size):
            thread = threading.Thread(
                target=self._work, name=f"build-worker-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        monitor = threading.Thread(
            target=self._monitor, name="build-monitor", daemon=True
        )
        monitor.start()
        self._threads.append(monitor)
        log.info("worker_pool_started owner=%s size=%d", self.owner, self._size)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, stop running builds and release their leases."""
        self._stop.set()
        with self._lock:
            for running in self._running.values():
                running.stopping = True
                running.cancel.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        log.info("worker_pool_stopped owner=%s", self.owner)

    def wake(self) -> None:
        """A task was queued: let an idle worker look now, not at its next poll."""
        with self._wakeup:
            self._wakeup.notify_all()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # Workers.

    def _work(self) -> None:
        while not self._stop.is_set():
            task_id = self._claim()
            if task_id is None:
                with self._wakeup:
                    self._wakeup.wait(self._poll)
                continue
            self._run(task_id)

    def _claim(self) -> str | None:
        try:
            with self._sessions.begin() as session:
                task = leases.claim_next_task(session, self.owner, self._lease)
                if task is None:
                    return None
                count = leases.attempts(session, task.id)
                if count > 1:
                    builds.append_log(
                        session,
                        task.id,
                        f"Resuming: the previous worker stopped (attempt {count})",
                    )
                return task.id
        except Exception:
            log.exception("task_claim_failed owner=%s", self.owner)
            return None

    def _run(self, task_id: str) -> None:
        running = _Running(task_id)
        with self._lock:
            self._running[task_id] = running
        log.info("task_started task_id=%s owner=%s", task_id, self.owner)
        try:
            self._runner(task_id, running.cancel)
        except Exception as exc:  # the runner records outcomes; this is a bug
            log.exception("task_runner_crashed task_id=%s", task_id)
            self._fail(task_id, f"Build failed: internal error: {exc}")
        finally:
            with self._lock:
                del self._running[task_id]
            self._finish_lease(running)
        log.info("task_finished task_id=%s", task_id)

    def _finish_lease(self, running: _Running) -> None:
        with self._sessions.begin() as session:
            status = leases.task_status(session, running.task_id)
            if running.stopping and status == builds.BUILDING:
                leases.release_lease(session, running.task_id, self.owner)
                builds.append_log(
                    session,
                    running.task_id,
                    "Released on shutdown; the build will run again on the next start",
                )
            elif status != builds.BUILDING:
                leases.drop_lease(session, running.task_id)

    def _fail(self, task_id: str, message: str) -> None:
        with self._sessions.begin() as session:
            task = session.get(builds.BuildTask, task_id)
            if task is None:
                return
            try:
                builds.transition(session, task, builds.FAILED)
            except InvalidStateError:
                return
            builds.append_log(session, task_id, message)

    # Monitor: leases and cancels.

    def _monitor(self) -> None:
        renew_every = max(self._watch, self._lease / 3)
        since_renew = 0.0
        while not self._stop.wait(self._watch):
            since_renew += self._watch
            renew = since_renew >= renew_every
            if renew:
                since_renew = 0.0
            for running in self._snapshot():
                self._watch_task(running, renew)

    def _snapshot(self) -> list[_Running]:
        with self._lock:
            return list(self._running.values())

    def _watch_task(self, running: _Running, renew: bool) -> None:
        try:
            with self._sessions.begin() as session:
                if renew:
                    status = leases.renew_lease(
                        session, running.task_id, self.owner, self._lease
                    )
                    if status is None:
                        log.warning("lease_lost task_id=%s", running.task_id)
                else:
                    status = leases.task_status(session, running.task_id)
        except Exception:
            log.exception("lease_renew_failed task_id=%s", running.task_id)
            return
        if status != builds.BUILDING:
            running.cancel.set()
