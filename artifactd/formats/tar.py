"""Streaming tar: read entries with their raw header bytes, write new ones.

The reader understands ustar, GNU (long names ``L``/``K``, base-256 numbers)
and PAX (``x`` per-entry and ``g`` global records). It hands out each entry's
exact header bytes, extension headers included, so a converter can copy them
verbatim and lose nothing (xattrs, fractional times, vendor records), and it
streams the payload without holding it in memory.

Block layout of a ustar header (offsets in bytes)::

    0 name[100]   100 mode[8]   108 uid[8]     116 gid[8]    124 size[12]
    136 mtime[12] 148 chksum[8] 156 typeflag   157 linkname[100]
    257 magic[6]  263 version[2] 265 uname[32] 297 gname[32]
    329 devmajor[8] 337 devminor[8] 345 prefix[155] (ustar only) 500 pad[12]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from artifactd.errors import CorruptLayerError, UnsafeLayerError, UnsupportedLayerError

BLOCK = 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)

REGULAR, REGULAR_OLD, HARDLINK, SYMLINK = b"0", b"\0", b"1", b"2"
CHAR, BLOCKDEV, DIRECTORY, FIFO, CONTIGUOUS = b"3", b"4", b"5", b"6", b"7"
PAX_HEADER, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK = b"x", b"g", b"L", b"K"

#: Entry kinds as the eStargz TOC names them.
KIND_BY_TYPEFLAG = {
    REGULAR: "reg",
    REGULAR_OLD: "reg",
    CONTIGUOUS: "reg",
    HARDLINK: "hardlink",
    SYMLINK: "symlink",
    CHAR: "char",
    BLOCKDEV: "block",
    DIRECTORY: "dir",
    FIFO: "fifo",
}

# Extension headers larger than this are refused rather than buffered.
_MAX_EXTENSION = 1 << 20


@dataclass
class TarEntry:
    """One archive member: what its headers say, and their exact bytes."""

    name: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: float
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    #: Every header block of this entry, extension headers first.
    raw_header: bytes = b""

    @property
    def padded_size(self) -> int:
        return -(-self.size // BLOCK) * BLOCK


def _parse_number(field_bytes: bytes, what: str) -> int:
    if field_bytes and field_bytes[0] & 0x80:
        # GNU base-256: the first byte's high bit is a flag, 0xff means negative.
        value = int.from_bytes(field_bytes, "big", signed=False)
        value &= (1 << (8 * len(field_bytes) - 1)) - 1
        if field_bytes[0] == 0xFF:
            value -= 1 << (8 * len(field_bytes) - 1)
        return value
    text = field_bytes.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise CorruptLayerError(f"tar header has a bad {what} field {text!r}") from exc


def _parse_string(field_bytes: bytes) -> str:
    return field_bytes.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156].split(b"\0", 1)[0].strip(b" ")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    header = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(header)
    if expected == unsigned:
        return True
    # Some old tar writers summed the bytes as signed chars.
    return expected == unsigned - 256 * sum(1 for b in header if b > 127)


def parse_pax_records(data: bytes) -> dict[str, bytes]:
    """Parse ``"%d %s=%s\\n"`` records; values stay bytes (xattrs are binary)."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise CorruptLayerError("tar PAX header has a bad record length") from exc
        record = data[space + 1 : pos + length]
        if (
            length <= 0
            or space < 0
            or pos + length > len(data)
            or not record.endswith(b"\n")
        ):
            raise CorruptLayerError("tar PAX header has a malformed record")
        key, eq, value = record[:-1].partition(b"=")
        if not eq:
            raise CorruptLayerError("tar PAX record lacks '='")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


class TarReader:
    """Iterates over the entries of a tar stream.

    After each entry is yielded, its payload must be consumed with
    :meth:`read_payload` (or it is skipped when the next entry is requested).
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._remaining = 0  # payload bytes of the current entry not yet read
        self._padding = 0
        self._global: dict[str, bytes] = {}
        self.offset = 0  # bytes of the uncompressed stream consumed so far

    def _read_exact(self, n: int) -> bytes:
        data = self._stream.read(n)
        while len(data) < n:
            more = self._stream.read(n - len(data))
            if not more:
                raise CorruptLayerError(
                    f"tar archive is truncated at byte {self.offset + len(data)}"
                )
            data += more
        self.offset += n
        return data

    def read_payload(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current entry's payload (b"" at its end)."""
        n = min(n, self._remaining)
        if n <= 0:
            return b""
        data = self._read_exact(n)
        self._remaining -= n
        return data

    def iter_payload(self, n: int) -> Iterator[bytes]:
        """The next ``n`` payload bytes (fewer at the entry's end), in pieces."""
        n = min(n, self._remaining)
        while n > 0:
            piece = self._stream.read(n)
            if not piece:
                raise CorruptLayerError(
                    f"tar archive is truncated at byte {self.offset}"
                )
            self.offset += len(piece)
            self._remaining -= len(piece)
            n -= len(piece)
            yield piece

    def _skip_rest(self) -> None:
        while self._remaining:
            self.read_payload(min(self._remaining, 1 << 20))
        if self._padding:
            self._read_exact(self._padding)
            self._padding = 0

    def __iter__(self) -> Iterator[TarEntry]:
        while True:
            self._skip_rest()
            entry = self._next_entry()
            if entry is None:
                return
            self._remaining = entry.size
            self._padding = entry.padded_size - entry.size
            yield entry

    def _read_block(self) -> bytes | None:
        data = self._stream.read(BLOCK)
        while len(data) < BLOCK:
            more = self._stream.read(BLOCK - len(data))
            if not more:
                if not data:
                    return None
                raise CorruptLayerError(
                    f"tar archive is truncated at byte {self.offset}"
                )
            data += more
        self.offset += BLOCK
        return data

    def _next_entry(self) -> TarEntry | None:
        raw: list[bytes] = []
        pax: dict[str, bytes] = {}
        long_name = long_link = None
        while True:
            block = self._read_block()
            if block is None or block == b"\0" * BLOCK:
                # End of archive (a missing second zero block is tolerated).
                return None
            if not _checksum_ok(block):
                raise CorruptLayerError(
                    f"tar header at byte {self.offset - BLOCK} has a bad checksum"
                )
            typeflag = block[156:157]
            raw.append(block)
            if typeflag in (PAX_HEADER, PAX_GLOBAL, GNU_LONGNAME, GNU_LONGLINK):
                data = self._read_extension(block, raw)
                if typeflag == PAX_HEADER:
                    pax.update(parse_pax_records(data))
                elif typeflag == PAX_GLOBAL:
                    self._global.update(parse_pax_records(data))
                elif typeflag == GNU_LONGNAME:
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link = data.split(b"\0", 1)[0]
                continue
            return self._build_entry(block, b"".join(raw), pax, long_name, long_link)

    def _read_extension(self, block: bytes, raw: list[bytes]) -> bytes:
        size = _parse_number(block[124:136], "size")
        if size < 0 or size > _MAX_EXTENSION:
            raise UnsupportedLayerError(f"tar extension header of {size} bytes")
        padded = -(-size // BLOCK) * BLOCK
        data = self._read_exact(padded)
        raw.append(data)
        return data[:size]

    def _build_entry(
        self,
        block: bytes,
        raw: bytes,
        pax: dict[str, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        records = {**self._global, **pax}
        typeflag = block[156:157]
        kind = KIND_BY_TYPEFLAG.get(typeflag)
        name = self._entry_name(block, records, long_name)
        if typeflag == b"S" or any(k.startswith("GNU.sparse.") for k in records):
            raise UnsupportedLayerError(
                f"tar entry {name!r} is a GNU sparse file, which eStargz cannot hold"
            )
        if kind is None:
            raise UnsupportedLayerError(
                f"tar entry {name!r} has unsupported type "
                f"{typeflag.decode('latin-1')!r}"
            )
        linkname = _parse_string(block[157:257])
        if long_link is not None:
            linkname = long_link.decode("utf-8", "surrogateescape")
        if "linkpath" in records:
            linkname = records["linkpath"].decode("utf-8", "surrogateescape")
        size = self._pax_int(records, "size", _parse_number(block[124:136], "size"))
        if size < 0:
            raise CorruptLayerError(f"tar entry {name!r} has a negative size")
        entry = TarEntry(
            name=name,
            kind=kind,
            size=size,
            mode=_parse_number(block[100:108], "mode"),
            uid=self._pax_int(records, "uid", _parse_number(block[108:116], "uid")),
            gid=self._pax_int(records, "gid", _parse_number(block[116:124], "gid")),
            uname=self._pax_str(records, "uname", _parse_string(block[265:297])),
            gname=self._pax_str(records, "gname", _parse_string(block[297:329])),
            mtime=self._mtime(block, records),
            linkname=linkname,
            xattrs={
                key[len("SCHILY.xattr.") :]: value
                for key, value in records.items()
                if key.startswith("SCHILY.xattr.")
            },
            raw_header=raw,
        )
        if kind in ("char", "block"):
            entry.devmajor = _parse_number(block[329:337], "devmajor")
            entry.devminor = _parse_number(block[337:345], "devminor")
        return entry

    @staticmethod
    def _entry_name(
        block: bytes, records: dict[str, bytes], long_name: bytes | None
    ) -> str:
        if "path" in records:
            return records["path"].decode("utf-8", "surrogateescape")
        if long_name is not None:
            return long_name.decode("utf-8", "surrogateescape")
        name = _parse_string(block[:100])
        if block[257:263] == b"ustar\0":
            prefix = _parse_string(block[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        return name

    @staticmethod
    def _pax_int(records: dict[str, bytes], key: str, default: int) -> int:
        if key not in records:
            return default
        try:
            return int(records[key])
        except ValueError as exc:
            raise CorruptLayerError(f"tar PAX record {key!r} is not a number") from exc

    @staticmethod
    def _pax_str(records: dict[str, bytes], key: str, default: str) -> str:
        if key not in records:
            return default
        return records[key].decode("utf-8", "surrogateescape")

    @staticmethod
    def _mtime(block: bytes, records: dict[str, bytes]) -> float:
        if "mtime" in records:
            try:
                return float(records["mtime"])
            except ValueError as exc:
                raise CorruptLayerError(
                    "tar PAX record 'mtime' is not a number"
                ) from exc
        return float(_parse_number(block[136:148], "mtime"))


def normalize_name(name: str) -> str:
    """Clean a member name the way container runtimes apply it.

    ``./x``, ``/x`` and ``a/../b`` become ``x``, ``x`` and ``b``; the root is
    ``""``. A name that climbs above the root (``../x``, ``a/../../x``) raises
    :class:`UnsafeLayerError`.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeLayerError(f"tar entry {name!r} escapes the layer root")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def encode_header(
    name: str,
    size: int,
    *,
    typeflag: bytes = REGULAR,
    mode: int = 0o644,
    mtime: int = 0,
    linkname: str = "",
) -> bytes:
    """A ustar header for a short, plain entry (landmarks, the TOC)."""
    encoded = name.encode()
    if len(encoded) > 100 or len(linkname.encode()) > 100:
        raise ValueError(f"name too long for a plain ustar header: {name!r}")
    header = bytearray(BLOCK)
    header[0 : len(encoded)] = encoded
    header[100:108] = b"%07o\0" % mode
    header[108:116] = b"%07o\0" % 0
    header[116:124] = b"%07o\0" % 0
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"%011o\0" % mtime
    header[156:157] = typeflag
    link = linkname.encode()
    header[157 : 157 + len(link)] = link
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)
