"""Used nonces kept in the store: what a restart must not forget."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from artifactd.openapi.errors import GatewayError
from artifactd.openapi.signing import NonceCache
from artifactd.store.db import open_data_dir
from artifactd.store.nonces import NonceJournal, UsedNonce


def journal_for(sessions, cache: NonceCache) -> NonceJournal:
    return NonceJournal(sessions, cache.drain, cache.restore, interval=60)


def stored(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(UsedNonce))


def test_claims_come_back_after_a_restart_and_expired_ones_do_not(tmp_path):
    sessions = open_data_dir(tmp_path)
    now = time.time()
    first = NonceCache(window_seconds=900, journaled=True)
    journal = journal_for(sessions, first)
    journal.start()
    first.claim("key", "fresh", now=now, signed_at=now)
    first.claim("key", "old", now=now, signed_at=now - 2000)  # kept 900 s past now
    odd = "x\0y" * 500  # a client's nonce: any characters, any length
    first.claim("key", odd, now=now, signed_at=now)
    journal.stop()
    assert stored(sessions) == 3

    second = NonceCache(window_seconds=900, journaled=True)
    journal_for(sessions, second).start()
    for nonce in ("fresh", "old", odd):
        with pytest.raises(GatewayError) as info:
            second.claim("key", nonce, now=now + 1, signed_at=now + 1)
        assert info.value.code == "SignatureNonceUsed"

    # Once the window has passed, the store forgets them too.
    with sessions() as session, session.begin():
        session.execute(UsedNonce.__table__.update().values(expires_at=int(now) - 1))
    third = NonceCache(window_seconds=900, journaled=True)
    journal_for(sessions, third).start()
    third.claim("key", "fresh", now=now + 2, signed_at=now + 2)
    assert stored(sessions) == 0


def test_a_failed_write_is_retried_with_the_next(tmp_path, monkeypatch):
    sessions = open_data_dir(tmp_path)
    cache = NonceCache(journaled=True)
    journal = journal_for(sessions, cache)
    journal.start()
    now = time.time()
    cache.claim("key", "a", now=now, signed_at=now)

    import artifactd.store.nonces as module

    real = module.save_nonces

    def down(session, entries):
        raise OSError("store unavailable")

    monkeypatch.setattr(module, "save_nonces", down)
    with pytest.raises(OSError):
        journal.flush()
    monkeypatch.setattr(module, "save_nonces", real)
    cache.claim("key", "b", now=now, signed_at=now)
    journal.flush()
    journal.flush()  # nothing new: writes nothing twice
    assert stored(sessions) == 2
    journal.stop()


def test_without_a_journal_the_cache_keeps_no_backlog():
    cache = NonceCache()
    now = time.time()
    cache.claim("key", "a", now=now, signed_at=now)
    assert cache.drain() == []
