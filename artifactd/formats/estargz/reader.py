"""Read an eStargz blob lazily: footer, then TOC, then only the chunks needed.

The reader works through any :class:`RandomAccess` source (a local file here,
an HTTP range reader for a remote blob), and verifies every chunk it
decompresses against the TOC's ``chunkDigest``.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from typing import Protocol

from artifactd.errors import CorruptLayerError, DigestError
from artifactd.formats import tar
from artifactd.formats.estargz.toc import (
    FOOTER_SIZE,
    TOC_NAME,
    TOCEntry,
    decode_toc,
    parse_footer,
)


class RandomAccess(Protocol):
    """Positional reads of a blob of known size."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes: ...


class FileRandomAccess:
    """:class:`RandomAccess` over a local file; counts what it reads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._size = os.fstat(self._fd).st_size
        self.bytes_read = 0
        self.reads = 0

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> FileRandomAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Chunk:
    offset: int  # of its gzip member in the blob
    end: int  # where the next member that holds a chunk (or the TOC) starts
    chunk_offset: int  # within the file
    chunk_size: int
    digest: str


class EStargzReader:
    """The TOC of an eStargz blob and random access to its files."""

    def __init__(self, source: RandomAccess, toc_digest: str = "") -> None:
        self._source = source
        tail_size = min(FOOTER_SIZE, source.size)
        tail = source.read_at(source.size - tail_size, tail_size)
        self.toc_offset, footer_size = parse_footer(tail)
        toc_end = source.size - footer_size
        if not 0 <= self.toc_offset < toc_end:
            raise CorruptLayerError("eStargz footer points outside the blob")
        toc_json = _read_toc(source.read_at(self.toc_offset, toc_end - self.toc_offset))
        self.toc_digest = "sha256:" + hashlib.sha256(toc_json).hexdigest()
        if toc_digest and toc_digest != self.toc_digest:
            raise DigestError(
                f"TOC digest is {self.toc_digest}, the annotation says {toc_digest}"
            )
        self.entries = decode_toc(toc_json)
        self._index()

    def _index(self) -> None:
        self._by_name: dict[str, TOCEntry] = {}
        self._chunks: dict[str, list[Chunk]] = {}
        offsets = sorted(
            {e.offset for e in self.entries if e.offset} | {self.toc_offset}
        )
        current = ""
        for entry in self.entries:
            if entry.type == "chunk":
                name = current
            else:
                name = current = tar.normalize_name(entry.name)
                self._by_name[name] = entry
            if entry.type not in ("reg", "chunk") or not entry.offset:
                continue
            file_entry = self._by_name[name]
            end = offsets[bisect_right(offsets, entry.offset)]
            size = entry.chunk_size or file_entry.size - entry.chunk_offset
            if entry.type == "reg":
                self._chunks[name] = []
            self._chunks[name].append(
                Chunk(entry.offset, end, entry.chunk_offset, size, entry.chunk_digest)
            )

    def names(self) -> list[str]:
        return list(self._by_name)

    def lookup(self, name: str) -> TOCEntry:
        key = tar.normalize_name(name)
        entry = self._by_name.get(key)
        seen = set()
        while entry is not None and entry.type == "hardlink" and key not in seen:
            seen.add(key)
            key = tar.normalize_name(entry.link_name)
            entry = self._by_name.get(key)
        if entry is None:
            raise FileNotFoundError(name)
        return entry

    def read_file(self, name: str, offset: int = 0, size: int | None = None) -> bytes:
        """Bytes ``[offset, offset+size)`` of a regular file, fetching only the
        chunks that overlap the range."""
        entry = self.lookup(name)
        if entry.type == "dir":
            raise IsADirectoryError(name)
        if entry.type != "reg":
            raise ValueError(f"{name} is a {entry.type}, not a regular file")
        end = entry.size if size is None else min(entry.size, offset + size)
        if offset >= end:
            return b""
        chunks = self._chunks.get(tar.normalize_name(entry.name), [])
        pieces = []
        for chunk in chunks:
            chunk_end = chunk.chunk_offset + chunk.chunk_size
            if chunk_end <= offset or chunk.chunk_offset >= end:
                continue
            data = self._read_chunk(chunk)
            lo = max(offset, chunk.chunk_offset) - chunk.chunk_offset
            hi = min(end, chunk_end) - chunk.chunk_offset
            pieces.append(data[lo:hi])
        return b"".join(pieces)

    def _read_chunk(self, chunk: Chunk) -> bytes:
        compressed = self._source.read_at(chunk.offset, chunk.end - chunk.offset)
        try:
            data = zlib.decompressobj(31).decompress(compressed, chunk.chunk_size)
        except zlib.error as exc:
            raise CorruptLayerError(
                f"chunk at blob offset {chunk.offset} is damaged: {exc}"
            ) from exc
        if len(data) != chunk.chunk_size:
            raise CorruptLayerError(f"chunk at blob offset {chunk.offset} is short")
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if chunk.digest and actual != chunk.digest:
            raise DigestError(
                f"chunk at blob offset {chunk.offset} has digest {actual}, "
                f"the TOC says {chunk.digest}"
            )
        return data


def _read_toc(member: bytes) -> bytes:
    """The TOC JSON from its gzip member (a tar entry named stargz.index.json)."""
    try:
        data = zlib.decompressobj(31).decompress(member)
    except zlib.error as exc:
        raise CorruptLayerError(f"eStargz TOC member is damaged: {exc}") from exc
    if len(data) < tar.BLOCK:
        raise CorruptLayerError("eStargz TOC member is too short")
    header = data[: tar.BLOCK]
    name = header[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if tar.normalize_name(name) != TOC_NAME:
        raise CorruptLayerError(f"last entry of the layer is {name!r}, not {TOC_NAME}")
    size_field = header[124:136].split(b"\0", 1)[0].strip()
    try:
        size = int(size_field, 8)
    except ValueError as exc:
        raise CorruptLayerError("eStargz TOC header has a bad size") from exc
    toc = data[tar.BLOCK : tar.BLOCK + size]
    if len(toc) != size:
        raise CorruptLayerError("eStargz TOC is truncated")
    return toc
