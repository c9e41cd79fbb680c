"""Content digests (``algorithm:hex``) and streaming verification."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import BinaryIO

from artifactd.errors import DigestError

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


def validate_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is a well-formed sha256/sha512 digest."""
    match = _DIGEST_RE.match(digest or "")
    if not match:
        raise DigestError(f"invalid digest {digest!r}")
    algorithm, encoded = match.groups()
    length = _ALGORITHMS.get(algorithm)
    if length is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        raise DigestError(f"invalid {algorithm} digest {digest!r}")
    return digest


def digest_hex(digest: str) -> str:
    """The encoded part of a validated digest (what blob paths are named by)."""
    return validate_digest(digest).split(":", 1)[1]


def digest_algorithm(digest: str) -> str:
    return validate_digest(digest).split(":", 1)[0]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Digester:
    """Accumulates a digest and a byte count over written data."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _ALGORITHMS:
            raise DigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"


class VerifyingReader:
    """Wraps a binary stream and checks its digest and size once it is exhausted.

    ``read`` raises :class:`DigestError` at the end of the stream (or as soon as
    more than ``size`` bytes arrive) so that a consumer never treats corrupt
    content as complete.
    """

    def __init__(self, stream: BinaryIO, digest: str, size: int | None = None) -> None:
        self._stream = stream
        self._expected = validate_digest(digest)
        self._size = size
        self._digester = Digester(digest_algorithm(digest))
        self._checked = False

    @property
    def bytes_read(self) -> int:
        return self._digester.size

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._digester.update(data)
            if self._size is not None and self._digester.size > self._size:
                raise DigestError(
                    f"content is larger than its descriptor's size {self._size}"
                )
        if (not data and n != 0) or n < 0:
            # An empty read, or a read of everything, reached the end.
            self.verify()
        return data

    def verify(self) -> None:
        """Check digest and size; idempotent."""
        if self._checked:
            return
        if self._size is not None and self._digester.size != self._size:
            raise DigestError(
                f"content has {self._digester.size} bytes, "
                f"its descriptor says {self._size}"
            )
        actual = self._digester.digest()
        if actual != self._expected:
            raise DigestError(
                f"content digest {actual} does not match {self._expected}"
            )
        self._checked = True

    def close(self) -> None:
        self._stream.close()


def digest_chunks(chunks: Iterable[bytes], algorithm: str = "sha256") -> Digester:
    digester = Digester(algorithm)
    for chunk in chunks:
        digester.update(chunk)
    return digester
