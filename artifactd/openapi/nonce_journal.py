"""Used API signature nonces, kept on disk so a restart forgets none.

The API claims nonces in memory (:class:`artifactd.openapi.signing.NonceCache`).
A :class:`NonceJournal` appends the new claims to a file in the data
directory five times a second and reads back the unexpired ones when the
service starts: a clean restart forgets none, a crash those of its last
fifth of a second. Appending a line per nonce costs next to nothing, so
the journal never holds requests up.

Files are named by the minute they were started in (``<minute>.log``); each
line is ``<expires_at> <claim>``, the claim written by :func:`claim_word`.
A file whose lines have all expired is deleted.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from artifactd.openapi.signing import TIMESTAMP_WINDOW_SECONDS

log = logging.getLogger(__name__)

_FILE_SECONDS = 60

# What the SDKs send: a key id and a UUID or hex nonce, printable ASCII.
_PLAIN_CLAIM_RE = re.compile(r"[A-Za-z0-9_.~-]{1,128}\0[!-~]{1,256}")


def claim_word(key: str) -> str:
    """A claimed ``access_key_id + "\\0" + nonce`` as one word of a line:
    ``<access key id>/<nonce>`` for plain ones, else ``=`` and the hex of its
    UTF-8 (a nonce is the client's text: any length, any character)."""
    if _PLAIN_CLAIM_RE.fullmatch(key):
        return key.replace("\0", "/", 1)
    return "=" + key.encode("utf-8", "surrogatepass").hex()


def claim_key(word: str) -> str | None:
    """The key :func:`claim_word` wrote, or None for a damaged word."""
    if word.startswith("="):
        try:
            return bytes.fromhex(word[1:]).decode("utf-8", "surrogatepass")
        except ValueError:
            return None
    access_key_id, slash, nonce = word.partition("/")
    if not slash or not access_key_id or not nonce:
        return None
    return f"{access_key_id}\0{nonce}"


class NonceJournal:
    """Keeps a nonce cache's claims in ``directory`` (see the module docstring).

    ``drain()`` returns the cache's claims since the last call and
    ``restore(entries)`` puts kept ones back: the cache's own methods.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        drain: Callable[[], list[tuple[str, int]]],
        restore: Callable[[Iterable[tuple[str, int]]], None],
        interval: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self._drain = drain
        self._restore = restore
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: TextIO | None = None
        self._file_minute = -1
        self._lock = threading.Lock()

    def start(self) -> None:
        """Read back the unexpired claims, then append new ones in the background."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = self._clock()
        self._restore(self._read(now))
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="nonce-journal", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is left and close; the journal can be started again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.flush()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def flush(self) -> None:
        """Append the claims made since the last flush."""
        entries = self._drain()
        if not entries:
            return
        with self._lock:
            handle = self._current(self._clock())
            handle.write(
                "".join(f"{expires} {claim_word(key)}\n" for key, expires in entries)
            )
            handle.flush()

    def _current(self, now: float) -> TextIO:
        minute = int(now // _FILE_SECONDS)
        if self._file is None or minute != self._file_minute:
            if self._file is not None:
                self._file.close()
            path = self.directory / f"{minute}.log"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "a", encoding="ascii")
            self._file_minute = minute
            self._forget(now)
        return self._file

    def _files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.directory.glob("*.log"):
            if path.stem.isdigit():
                found.append((int(path.stem), path))
        return sorted(found)

    def _forget(self, now: float) -> None:
        """Delete files whose every claim has expired: a line was written
        before its file's minute ended, and a claim dated ahead of its
        request lives at most twice the window past it."""
        lifetime = 2 * TIMESTAMP_WINDOW_SECONDS + 1
        for minute, path in self._files():
            if (minute + 1) * _FILE_SECONDS + lifetime < now:
                path.unlink(missing_ok=True)

    def _read(self, now: float) -> list[tuple[str, int]]:
        entries = []
        for _, path in self._files():
            with open(path, encoding="ascii", errors="replace") as handle:
                for line in handle:
                    expires, _, word = line.rstrip("\n").partition(" ")
                    key = claim_key(word)
                    if expires.isdigit() and key is not None and int(expires) > now:
                        entries.append((key, int(expires)))
        return entries

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except OSError:  # a full disk: keep serving, keep trying
                log.exception("nonce_journal_write_failed")
