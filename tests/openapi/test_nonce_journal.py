"""Used nonces kept on disk: what a restart must not forget."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artifactd.openapi.errors import GatewayError
from artifactd.openapi.nonce_journal import NonceJournal, claim_key, claim_word
from artifactd.openapi.signing import NonceCache


def restarted(directory, clock=time.time) -> tuple[NonceCache, NonceJournal]:
    cache = NonceCache(window_seconds=900, journaled=True)
    journal = NonceJournal(directory, cache.drain, cache.restore, 60, clock)
    journal.start()
    return cache, journal


def refused(cache: NonceCache, nonce: str, at: float) -> bool:
    try:
        cache.claim("key", nonce, now=at, signed_at=at)
    except GatewayError as exc:
        assert exc.code == "SignatureNonceUsed"
        return True
    return False


def test_claims_come_back_after_a_restart(tmp_path):
    now = time.time()
    cache, journal = restarted(tmp_path)
    odd = "x\0y\n" * 500  # a client's nonce: any characters, any length
    for nonce in ("fresh", "dated-ahead", odd):
        signed_at = now + 600 if nonce == "dated-ahead" else now
        cache.claim("key", nonce, now=now, signed_at=signed_at)
    journal.stop()  # a clean shutdown writes everything

    cache, journal = restarted(tmp_path)
    for nonce in ("fresh", "dated-ahead", odd):
        assert refused(cache, nonce, now + 1)
    assert not refused(cache, "new", now + 1)
    journal.stop()
    # 15 minutes on, "fresh" may be used again; the one dated ahead may not.
    cache, journal = restarted(tmp_path)
    later = now + 902
    assert not refused(cache, "fresh", later)
    assert refused(cache, "dated-ahead", later)
    journal.stop()


def test_the_background_writer_needs_no_shutdown(tmp_path):
    now = time.time()
    cache = NonceCache(journaled=True)
    journal = NonceJournal(tmp_path, cache.drain, cache.restore, interval=0.05)
    journal.start()
    cache.claim("key", "a", now=now, signed_at=now)
    deadline = time.monotonic() + 5
    while not any(p.stat().st_size for p in tmp_path.glob("*.log")):
        assert time.monotonic() < deadline, "nothing written"
        time.sleep(0.02)
    # As if the process died here: a new one reads what was written.
    cache, other = restarted(tmp_path)
    assert refused(cache, "a", now + 1)
    other.stop()
    journal.stop()


def test_expired_files_are_deleted_and_damaged_lines_skipped(tmp_path):
    now = time.time()
    stale = tmp_path / f"{int(now // 60) - 40}.log"
    stale.write_text(f"{int(now) - 1000} {'ab' * 32}\n")
    current = tmp_path / f"{int(now // 60)}.log"
    current.write_text("garbage\n12 short\n")
    cache, journal = restarted(tmp_path)
    cache.claim("key", "a", now=now, signed_at=now)
    journal.flush()
    assert not stale.exists()
    assert current.exists()
    journal.stop()


def test_without_a_journal_the_cache_keeps_no_backlog():
    cache = NonceCache()
    now = time.time()
    cache.claim("key", "a", now=now, signed_at=now)
    assert cache.drain() == []
    with pytest.raises(GatewayError):
        cache.claim("key", "a", now=now, signed_at=now)


@given(st.text(min_size=1), st.text(min_size=1))
def test_every_claim_is_one_word_that_reads_back(access_key_id, nonce):
    key = f"{access_key_id}\0{nonce}"
    word = claim_word(key)
    assert word and " " not in word and "\n" not in word and word.isascii()
    assert claim_key(word) == key


def test_sdk_nonces_are_written_as_they_are():
    assert claim_word("LTAIkey\0f81d4fae-7dec-11d0") == "LTAIkey/f81d4fae-7dec-11d0"
    assert claim_key("LTAIkey/a/b") == "LTAIkey\0a/b"
