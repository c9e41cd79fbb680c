"""Layer compression: detected from the bytes, decompressed as a bounded stream.

A layer's media type says how it is compressed, but registries and tools get
that wrong often enough that artifactd trusts the first bytes instead.
"""

from __future__ import annotations

import enum
import hashlib
import zlib
from typing import BinaryIO

import zstandard

from artifactd.errors import CorruptLayerError, UnsafeLayerError

GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_READ_SIZE = 1 << 20
_OUTPUT_PIECE = 1 << 20


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def detect(head: bytes) -> Compression:
    """The compression of a stream that starts with ``head`` (4+ bytes)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


class _PeekedStream:
    """A stream with some bytes already read from its front, put back."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
                if n < 0:
                    return data + self._stream.read()
                return data + self._stream.read(n - len(data))
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._stream.read(n)


class DecompressingReader:
    """A readable stream of the uncompressed bytes of ``stream``.

    Gzip may have several members (as eStargz layers do). Trailing zero bytes
    after the last member are tolerated, as GNU gzip does; anything else is
    corruption. Reading past ``limit`` uncompressed bytes raises
    :class:`UnsafeLayerError` (a decompression bomb guard). ``diff_id()`` is
    the sha256 of everything decompressed so far.
    """

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        head = _read_at_least(stream, 4)
        self.compression = detect(head)
        self._source = _PeekedStream(head, stream)
        self._limit = limit
        self.total_out = 0
        self._hash = hashlib.sha256()
        self._buffer = b""
        self._pos = 0
        self._eof = False
        if self.compression is Compression.GZIP:
            self._gzip = zlib.decompressobj(31)
            self._input = b""
            self._member_done = False
        elif self.compression is Compression.ZSTD:
            dctx = zstandard.ZstdDecompressor(max_window_size=1 << 31)
            self._zstd = dctx.stream_reader(self._source, read_size=_READ_SIZE)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            pieces = []
            while piece := self.read(_OUTPUT_PIECE):
                pieces.append(piece)
            return b"".join(pieces)
        # Small reads (tar headers) are served from the buffer by position:
        # slicing the remainder off each time would copy it again and again.
        while self._pos >= len(self._buffer):
            if self._eof:
                return b""
            self._buffer, self._pos = self._fill(), 0
        start = self._pos
        self._pos = min(start + n, len(self._buffer))
        if start == 0 and self._pos == len(self._buffer):
            return self._buffer
        return self._buffer[start : self._pos]

    def diff_id(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def readinto(self, view: memoryview | bytearray) -> int:
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _fill(self) -> bytes:
        if self.compression is Compression.GZIP:
            data = self._fill_gzip()
        elif self.compression is Compression.ZSTD:
            data = self._fill_zstd()
        else:
            data = self._source.read(_READ_SIZE)
            if not data:
                self._eof = True
        self.total_out += len(data)
        self._hash.update(data)
        if self._limit is not None and self.total_out > self._limit:
            raise UnsafeLayerError(
                f"layer decompresses to more than {self._limit} bytes "
                "(the configured limit)"
            )
        return data

    def _fill_zstd(self) -> bytes:
        try:
            data = self._zstd.read(_OUTPUT_PIECE)
        except zstandard.ZstdError as exc:
            raise CorruptLayerError(f"zstd stream is damaged: {exc}") from exc
        if not data:
            self._eof = True
        return data

    def _fill_gzip(self) -> bytes:
        while True:
            if self._gzip.eof:
                rest = self._gzip.unused_data + self._input
                self._input = b""
                if not self._start_next_member(rest):
                    self._eof = True
                    return b""
            if not self._input:
                self._input = self._gzip.unconsumed_tail or self._source.read(
                    _READ_SIZE
                )
                if not self._input:
                    raise CorruptLayerError("gzip stream is truncated")
            try:
                data = self._gzip.decompress(self._input, _OUTPUT_PIECE)
            except zlib.error as exc:
                raise CorruptLayerError(f"gzip stream is damaged: {exc}") from exc
            self._input = self._gzip.unconsumed_tail
            if data:
                return data

    def _start_next_member(self, rest: bytes) -> bool:
        """After a member ends: begin the next one, or confirm the stream ended."""
        while len(rest) < 3:
            more = self._source.read(_READ_SIZE)
            if not more:
                break
            rest += more
        if rest.startswith(GZIP_MAGIC):
            self._gzip = zlib.decompressobj(31)
            self._input = rest
            return True
        # Only zero padding may follow the last member.
        while rest:
            if rest.strip(b"\0"):
                raise CorruptLayerError("gzip stream is followed by unexpected data")
            rest = self._source.read(_READ_SIZE)
        return False


def _read_at_least(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data
