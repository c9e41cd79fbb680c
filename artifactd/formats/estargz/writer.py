"""Build an eStargz blob from any tar layer, streaming.

The uncompressed output is the input tar with its end-of-archive marker
replaced by the TOC entry, preceded by a prefetch landmark (and, if asked, the
prioritized files moved to the front). Header bytes are copied verbatim, so
PAX records, xattrs, long names and fractional times survive untouched.

The stream is cut into gzip members right before every chunk of file payload;
a member holds that chunk plus whatever tar bytes follow until the next chunk
(padding, headers of directories, links and the next file). Members are
compressed in parallel by a thread pool (zlib releases the GIL) and written in
order, so memory stays bounded by the number of members in flight.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from artifactd.errors import CorruptLayerError, DigestError, UnsafeLayerError
from artifactd.formats import tar
from artifactd.formats.compression import DecompressingReader
from artifactd.formats.estargz.toc import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVEL,
    LANDMARK_CONTENTS,
    NO_PREFETCH_LANDMARK,
    PREFETCH_LANDMARK,
    TOC_NAME,
    TOCEntry,
    encode_footer,
    encode_toc,
    format_modtime,
)
from artifactd.oci.digest import Digester, validate_digest

try:
    # zlib-ng's deflate at level 9 matches zlib's ratio at well under half the
    # CPU time, and releases the GIL the same way; its output is plain gzip.
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - zlib-ng is a declared dependency
    import zlib as _deflate  # type: ignore[no-redef]

#: Members are handed to the pool in batches of at least this many bytes, so
#: that thousands of tiny files do not each pay a round trip through the pool.
_BATCH_BYTES = 1 << 20
_SPOOL_COPY = 1 << 20
_EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"").hexdigest()
_RESERVED_NAMES = frozenset({TOC_NAME, PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK})


@dataclass(frozen=True)
class BuildOptions:
    level: int = DEFAULT_LEVEL
    chunk_size: int = DEFAULT_CHUNK_SIZE
    #: Absolute (or layer-relative) paths to place first, in this order.
    prioritized_files: Sequence[str] = ()
    #: Refuse layers that decompress past this many bytes (None: no limit).
    max_uncompressed_size: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.level <= 9:
            raise ValueError(f"compression level must be 0-9, not {self.level}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be positive, not {self.chunk_size}")

    def cache_key(self) -> str:
        """Identifies the output these options give for a given source layer
        (the size limit only refuses layers, so it is left out)."""
        text = "\n".join(
            ["estargz", str(self.level), str(self.chunk_size), *self.prioritized_files]
        )
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class LayerResult:
    """What a built blob is, for its descriptor and the image config."""

    digest: str
    size: int
    diff_id: str
    toc_digest: str
    uncompressed_size: int
    source_diff_id: str
    entries: int
    prioritized_missing: list[str] = field(default_factory=list)


ProgressCallback = Callable[[int], None]


def build_estargz(
    source: BinaryIO,
    out: BinaryIO,
    options: BuildOptions | None = None,
    *,
    source_digest: str = "",
    source_size: int | None = None,
    source_diff_id: str = "",
    executor: Executor | None = None,
    progress: ProgressCallback | None = None,
) -> LayerResult:
    """Convert the layer read from ``source`` into an eStargz blob on ``out``.

    ``source`` may be gzip, zstd or plain tar (detected from its bytes). When
    ``source_digest``/``source_size``/``source_diff_id`` are given they are
    checked once the whole source is read, and a mismatch raises
    :class:`DigestError`. ``progress`` receives compressed source bytes read.
    """
    options = options or BuildOptions()
    counted = _CountingReader(source, source_digest, progress)
    decompressed = DecompressingReader(counted, options.max_uncompressed_size)
    own_executor = None
    if executor is None:
        own_executor = executor = ThreadPoolExecutor(max(1, os.cpu_count() or 1))
    try:
        members = _MemberWriter(out, options.level, executor)
        builder = _Builder(members, options)
        reader = tar.TarReader(decompressed)
        if options.prioritized_files:
            with tempfile.TemporaryFile() as spool:
                entries = _spool(reader, spool)
                _drain(decompressed)
                missing = builder.add_prioritized(entries, spool)
        else:
            builder.add_landmark(NO_PREFETCH_LANDMARK)
            builder.add_stream(reader)
            _drain(decompressed)
            missing = []
        toc_digest, entry_count = builder.finish()
    finally:
        if own_executor is not None:
            own_executor.shutdown(wait=True, cancel_futures=True)

    _check_source(counted, decompressed, source_digest, source_size, source_diff_id)
    return LayerResult(
        digest=members.blob_digest(),
        size=members.written,
        diff_id="sha256:" + members.diff_hash.hexdigest(),
        toc_digest=toc_digest,
        uncompressed_size=members.uncompressed,
        source_diff_id=decompressed.diff_id(),
        entries=entry_count,
        prioritized_missing=missing,
    )


def _check_source(
    counted: _CountingReader,
    decompressed: DecompressingReader,
    digest: str,
    size: int | None,
    diff_id: str,
) -> None:
    if size is not None and counted.size != size:
        raise DigestError(
            f"layer has {counted.size} bytes but its descriptor says {size}"
        )
    if digest and counted.digest() != digest:
        raise DigestError(
            f"layer bytes have digest {counted.digest()}, not {digest} "
            "as its descriptor says"
        )
    if diff_id and decompressed.diff_id() != diff_id:
        raise DigestError(
            f"uncompressed layer has digest {decompressed.diff_id()}, "
            f"not the config's diff_id {diff_id}"
        )


def _drain(stream: DecompressingReader) -> None:
    """Read what follows the tar (zero blocks) so digests cover every byte."""
    while stream.read(_SPOOL_COPY):
        pass


class _CountingReader:
    """Hashes and counts the compressed source as it is read."""

    def __init__(
        self, stream: BinaryIO, digest: str, progress: ProgressCallback | None
    ):
        algorithm = validate_digest(digest).split(":")[0] if digest else "sha256"
        self._stream = stream
        self._digester = Digester(algorithm)
        self._progress = progress

    @property
    def size(self) -> int:
        return self._digester.size

    def digest(self) -> str:
        return self._digester.digest()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if data:
            self._digester.update(data)
            if self._progress is not None:
                self._progress(len(data))
        return data


def _compress_batch(members: list[bytes], level: int) -> list[bytes]:
    return [_deflate.compress(member, level, 31) for member in members]


class _MemberWriter:
    """Cuts the uncompressed stream into gzip members and writes them in order.

    ``member_offsets[i]`` is the blob offset of member ``i`` once written.
    """

    def __init__(self, out: BinaryIO, level: int, executor: Executor) -> None:
        self._out = out
        self._level = level
        self._executor = executor
        self._pending: list[bytes] = []
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._in_flight: deque[Future[list[bytes]]] = deque()
        self._max_in_flight = 2 * getattr(executor, "_max_workers", 2) + 2
        self.members = 0
        self.member_offsets: list[int] = []
        self.written = 0
        self.uncompressed = 0
        self.diff_hash = hashlib.sha256()
        self._blob_hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._pending.append(data)
        self.uncompressed += len(data)
        self.diff_hash.update(data)

    def cut(self) -> int:
        """End the current member; return the index of the member that follows."""
        if self._pending:
            member = b"".join(self._pending)
            self._pending = []
            self._batch.append(member)
            self._batch_bytes += len(member)
            self.members += 1
            if self._batch_bytes >= _BATCH_BYTES:
                self._submit()
        return self.members

    def _submit(self) -> None:
        if not self._batch:
            return
        future = self._executor.submit(_compress_batch, self._batch, self._level)
        self._in_flight.append(future)
        self._batch, self._batch_bytes = [], 0
        while len(self._in_flight) > self._max_in_flight:
            self._write_oldest()

    def _write_oldest(self) -> None:
        for compressed in self._in_flight.popleft().result():
            self.member_offsets.append(self.written)
            self._out.write(compressed)
            self._blob_hash.update(compressed)
            self.written += len(compressed)

    def flush(self) -> None:
        """Compress and write every member cut so far."""
        self._submit()
        while self._in_flight:
            self._write_oldest()

    def write_raw(self, data: bytes) -> None:
        """Append bytes after all members (the footer); call after flush."""
        self._out.write(data)
        self._blob_hash.update(data)
        self.written += len(data)

    def blob_digest(self) -> str:
        return "sha256:" + self._blob_hash.hexdigest()


@dataclass
class _SpooledEntry:
    entry: tar.TarEntry
    name: str  # normalized
    payload_offset: int


class _Builder:
    """Turns tar entries into member writes and TOC entries."""

    def __init__(self, members: _MemberWriter, options: BuildOptions) -> None:
        self._members = members
        self._chunk_size = options.chunk_size
        self._level = options.level
        self._prioritized = list(options.prioritized_files)
        # TOC entries and, for each, the member its offset refers to (-1: none).
        self._toc: list[TOCEntry] = []
        self._toc_members: list[int] = []

    # Sources of entries.

    def add_stream(self, reader: tar.TarReader) -> None:
        for entry in reader:
            name = _checked_name(entry)
            if name in _RESERVED_NAMES:
                continue
            self._add(entry, name, reader.iter_payload)

    def add_landmark(self, name: str) -> None:
        entry = tar.TarEntry(
            name=name,
            kind="reg",
            size=1,
            mode=0,
            uid=0,
            gid=0,
            uname="",
            gname="",
            mtime=0,
            raw_header=tar.encode_header(name, 1, mode=0),
        )
        payload = iter([LANDMARK_CONTENTS])
        self._add(entry, name, lambda n: payload)

    def add_prioritized(
        self, entries: list[_SpooledEntry], spool: BinaryIO
    ) -> list[str]:
        """Emit the prioritized files (with their parents and link targets)
        first, then the landmark, then everything else in archive order."""
        order, missing = _prioritized_order(entries, self._prioritized)
        chosen = set(order)
        moved = {entries[index].name for index in order}
        for index in order:
            self._add_spooled(entries[index], spool)
        self.add_landmark(PREFETCH_LANDMARK)
        for index, spooled in enumerate(entries):
            # Earlier copies of a moved name are dropped: left behind, they
            # would come after the moved (last) copy and win on extraction.
            if index not in chosen and spooled.name not in moved:
                self._add_spooled(spooled, spool)
        return missing

    def _add_spooled(self, spooled: _SpooledEntry, spool: BinaryIO) -> None:
        spool.seek(spooled.payload_offset)
        remaining = spooled.entry.size

        def pieces(n: int) -> Iterator[bytes]:
            nonlocal remaining
            n = min(n, remaining)
            while n > 0:
                piece = spool.read(min(n, _SPOOL_COPY))
                if not piece:
                    raise CorruptLayerError("spooled layer ended early")
                remaining -= len(piece)
                n -= len(piece)
                yield piece

        self._add(spooled.entry, spooled.name, pieces)

    # Emitting one entry.

    def _add(
        self,
        entry: tar.TarEntry,
        name: str,
        payload: Callable[[int], Iterable[bytes]],
    ) -> None:
        members = self._members
        members.write(entry.raw_header)
        toc_entry = _toc_entry(entry, name)
        if entry.kind != "reg" or entry.size == 0:
            if entry.size:
                # Payload bytes of a non-regular entry (old hard link styles)
                # are copied as they are; the TOC does not point at them.
                for piece in payload(entry.size):
                    members.write(piece)
                members.write(tar.padding(entry.size))
            if entry.kind == "reg":
                toc_entry.digest = _EMPTY_DIGEST
            self._append(toc_entry, -1)
            return
        file_hash = hashlib.sha256()
        written = 0
        current = toc_entry
        while written < entry.size:
            length = min(self._chunk_size, entry.size - written)
            member = members.cut()
            chunk_hash = hashlib.sha256() if length < entry.size else file_hash
            for piece in payload(length):
                members.write(piece)
                chunk_hash.update(piece)
                if chunk_hash is not file_hash:
                    file_hash.update(piece)
            current.chunk_offset = written
            # Every chunk but the last states its size; 0 means "to the end".
            current.chunk_size = length if written + length < entry.size else 0
            current.chunk_digest = "sha256:" + chunk_hash.hexdigest()
            self._append(current, member)
            written += length
            current = TOCEntry(name=name, type="chunk")
        toc_entry.digest = "sha256:" + file_hash.hexdigest()
        members.write(tar.padding(entry.size))

    def _append(self, entry: TOCEntry, member: int) -> None:
        self._toc.append(entry)
        self._toc_members.append(member)

    def finish(self) -> tuple[str, int]:
        """Write the TOC member and the footer; return the TOC digest."""
        members = self._members
        members.cut()
        members.flush()
        for entry, member in zip(self._toc, self._toc_members, strict=True):
            if member >= 0:
                entry.offset = members.member_offsets[member]
        toc_json = encode_toc(self._toc)
        toc_offset = members.written
        members.write(tar.encode_header(TOC_NAME, len(toc_json)))
        members.write(toc_json)
        members.write(tar.padding(len(toc_json)))
        members.write(tar.END_OF_ARCHIVE)
        members.cut()
        members.flush()
        members.write_raw(encode_footer(toc_offset))
        return "sha256:" + hashlib.sha256(toc_json).hexdigest(), len(self._toc)


def _checked_name(entry: tar.TarEntry) -> str:
    name = tar.normalize_name(entry.name)
    if entry.kind == "hardlink":
        try:
            tar.normalize_name(entry.linkname)
        except UnsafeLayerError as exc:
            raise UnsafeLayerError(
                f"hard link {entry.name!r} points outside the layer root "
                f"({entry.linkname!r})"
            ) from exc
    return name


def _toc_entry(entry: tar.TarEntry, name: str) -> TOCEntry:
    link_name = entry.linkname
    if entry.kind == "hardlink":
        link_name = tar.normalize_name(link_name)
    return TOCEntry(
        name=name or "./",
        type=entry.kind,
        size=entry.size if entry.kind == "reg" else 0,
        modtime=format_modtime(entry.mtime),
        link_name=link_name if entry.kind in ("hardlink", "symlink") else "",
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        user_name=entry.uname,
        group_name=entry.gname,
        dev_major=entry.devmajor,
        dev_minor=entry.devminor,
        xattrs=dict(entry.xattrs),
    )


def _spool(reader: tar.TarReader, spool: BinaryIO) -> list[_SpooledEntry]:
    """Copy every payload to ``spool`` and index the entries."""
    entries = []
    for entry in reader:
        name = _checked_name(entry)
        if name in _RESERVED_NAMES:
            continue
        entries.append(_SpooledEntry(entry, name, spool.tell()))
        for piece in reader.iter_payload(entry.size):
            spool.write(piece)
    return entries


def _prioritized_order(
    entries: list[_SpooledEntry], prioritized: Sequence[str]
) -> tuple[list[int], list[str]]:
    """Indexes of the entries to emit first, and the prioritized paths not found.

    Each prioritized path brings its parent directories before it and, for a
    hard link, its target, as the reference builder does. A name that occurs
    more than once refers to its last occurrence (the one extraction keeps).
    """
    by_name = {spooled.name: index for index, spooled in enumerate(entries)}
    order: list[int] = []
    chosen: set[int] = set()
    missing: list[str] = []

    def take(name: str) -> bool:
        index = by_name.get(name)
        if name:
            parent = name.rpartition("/")[0]
            take(parent)
        if index is None or index in chosen:
            return index is not None
        spooled = entries[index]
        if spooled.entry.kind == "hardlink":
            take(tar.normalize_name(spooled.entry.linkname))
        chosen.add(index)
        order.append(index)
        return True

    for path in prioritized:
        try:
            name = tar.normalize_name(path)
        except UnsafeLayerError:
            missing.append(path)
            continue
        if name not in by_name or not take(name):
            missing.append(path)
    return order, missing
