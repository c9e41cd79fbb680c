"""Used API signature nonces, kept in the store so a restart forgets none.

The API claims nonces in memory (:class:`artifactd.openapi.signing.NonceCache`);
a :class:`NonceJournal` writes the new ones to the store about once a second
and reads back the unexpired ones when the service starts. A nonce used in
the last second before a crash can therefore be replayed after it; a clean
shutdown writes everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from artifactd.store.db import Base

log = logging.getLogger(__name__)


class UsedNonce(Base):
    __tablename__ = "api_nonces"

    #: SHA-256 (hex) of the access key id and nonce, as the cache keys them.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Whole second from which the nonce may be forgotten.
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


def save_nonces(session: Session, entries: Iterable[tuple[str, int]]) -> None:
    """Record ``(key, expires_at)`` pairs; ones already recorded are skipped."""
    rows = list(entries)
    if not rows:
        return
    # Straight to the driver's executemany: a second's worth of a busy
    # server's nonces (thousands) then costs a few milliseconds.
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(
        f'INSERT INTO {UsedNonce.__tablename__} ("key", expires_at) '
        f'VALUES ({mark}, {mark}) ON CONFLICT ("key") DO NOTHING',
        rows,
    )


def live_nonces(session: Session, now: float) -> list[tuple[str, int]]:
    query = select(UsedNonce.key, UsedNonce.expires_at).where(
        UsedNonce.expires_at > now
    )
    return [(key, expires) for key, expires in session.execute(query)]


def forget_expired(session: Session, now: float) -> int:
    result = session.execute(delete(UsedNonce).where(UsedNonce.expires_at <= now))
    return result.rowcount or 0


class NonceJournal:
    """Keeps a nonce cache's claims in the store (see the module docstring).

    ``drain()`` returns what the cache claimed since the last call and
    ``restore(entries)`` puts stored claims back: the cache's own methods.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        drain: Callable[[], list[tuple[str, int]]],
        restore: Callable[[Iterable[tuple[str, int]]], None],
        interval: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._drain = drain
        self._restore = restore
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsaved: list[tuple[str, int]] = []

    def start(self) -> None:
        """Load the unexpired nonces, then write new ones in the background."""
        with self._sessions() as session, session.begin():
            forget_expired(session, time.time())
            self._restore(live_nonces(session, time.time()))
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="nonce-journal", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is left; the journal can be started again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.flush()

    def flush(self) -> None:
        """Write the claims made since the last flush (kept if this fails)."""
        self._unsaved.extend(self._drain())
        with self._sessions() as session, session.begin():
            save_nonces(session, self._unsaved)
            forget_expired(session, time.time())
        self._unsaved.clear()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # the store is down: keep serving, retry
                log.exception("nonce_journal_flush_failed")
