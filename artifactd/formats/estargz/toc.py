"""The eStargz table of contents and footer, as the format defines them.

The TOC is a tar entry named ``stargz.index.json``, last in the layer and in a
gzip member of its own: ``{"version": 1, "entries": [...]}``. Entry keys, in
the order artifactd writes them::

    name type size modtime linkName mode uid gid userName groupName offset
    devMajor devMinor xattrs digest chunkOffset chunkSize chunkDigest

Zero values are omitted, as the reference implementation does. ``offset`` is
where the gzip member holding a file's (or chunk's) first payload byte starts;
``chunkSize`` 0 on a chunk means "to the end of the file".

The footer is one empty gzip member of 51 bytes::

    0  1f 8b 08 04            magic, deflate, FLG.FEXTRA
    4  00 00 00 00 00 ff      MTIME 0, XFL 0, OS unknown
    10 1a 00                  XLEN = 26
    12 'S' 'G' 16 00          subfield id "SG", length 22
    16 %016x "STARGZ"         TOC offset in lower-case hex, then the magic
    38 01 00 00 ff ff         an empty, final stored deflate block
    43 00 00 00 00 00 00 00 00  CRC32 and ISIZE of nothing

The legacy stargz footer (47 bytes, no "SG" subfield, offset as %016x then
"STARGZ" in the extra field directly) is read, never written.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from artifactd.errors import CorruptLayerError

TOC_NAME = "stargz.index.json"
PREFETCH_LANDMARK = ".prefetch.landmark"
NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"
LANDMARK_CONTENTS = b"\x0f"
FOOTER_SIZE = 51
LEGACY_FOOTER_SIZE = 47
DEFAULT_CHUNK_SIZE = 4 << 20
DEFAULT_LEVEL = 9

_FOOTER_HEAD = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x1a\x00SG\x16\x00"
_FOOTER_TAIL = b"\x01\x00\x00\xff\xff" + b"\x00" * 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_footer(toc_offset: int) -> bytes:
    footer = _FOOTER_HEAD + b"%016xSTARGZ" % toc_offset + _FOOTER_TAIL
    assert len(footer) == FOOTER_SIZE
    return footer


def parse_footer(tail: bytes) -> tuple[int, int]:
    """``(toc_offset, footer_size)`` from the last 51 (or more) bytes of a blob."""
    if len(tail) >= FOOTER_SIZE:
        footer = tail[-FOOTER_SIZE:]
        if footer[:16] == _FOOTER_HEAD and footer[32:38] == b"STARGZ":
            return _hex_offset(footer[16:32]), FOOTER_SIZE
    if len(tail) >= LEGACY_FOOTER_SIZE:
        footer = tail[-LEGACY_FOOTER_SIZE:]
        # Legacy: FLG.FEXTRA, XLEN 22, the extra field is the bare payload.
        if footer[:4] == b"\x1f\x8b\x08\x04" and footer[10:12] == b"\x16\x00":
            if footer[28:34] == b"STARGZ":
                return _hex_offset(footer[12:28]), LEGACY_FOOTER_SIZE
    raise CorruptLayerError("no eStargz footer at the end of the blob")


def _hex_offset(text: bytes) -> int:
    try:
        return int(text, 16)
    except ValueError as exc:
        raise CorruptLayerError("eStargz footer holds a malformed TOC offset") from exc


def format_modtime(mtime: float) -> str:
    """RFC 3339 in UTC, rounded to the second; "" for the epoch (omitted)."""
    seconds = math.floor(abs(mtime) + 0.5) * (1 if mtime >= 0 else -1)
    if seconds == 0:
        return ""
    try:
        return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        return ""


def parse_modtime(text: str) -> float:
    if not text:
        return 0.0
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


@dataclass
class TOCEntry:
    name: str
    type: str
    size: int = 0
    modtime: str = ""
    link_name: str = ""
    mode: int = 0
    uid: int = 0
    gid: int = 0
    user_name: str = ""
    group_name: str = ""
    offset: int = 0
    dev_major: int = 0
    dev_minor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    digest: str = ""
    chunk_offset: int = 0
    chunk_size: int = 0
    chunk_digest: str = ""

    _KEYS = (
        ("name", "name"),
        ("type", "type"),
        ("size", "size"),
        ("modtime", "modtime"),
        ("link_name", "linkName"),
        ("mode", "mode"),
        ("uid", "uid"),
        ("gid", "gid"),
        ("user_name", "userName"),
        ("group_name", "groupName"),
        ("offset", "offset"),
        ("dev_major", "devMajor"),
        ("dev_minor", "devMinor"),
        ("xattrs", "xattrs"),
        ("digest", "digest"),
        ("chunk_offset", "chunkOffset"),
        ("chunk_size", "chunkSize"),
        ("chunk_digest", "chunkDigest"),
    )

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"name": self.name, "type": self.type}
        for attr, key in self._KEYS[2:]:
            value = getattr(self, attr)
            if not value:
                continue
            if attr == "xattrs":
                value = {k: base64.b64encode(v).decode() for k, v in value.items()}
            obj[key] = value
        return obj

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TOCEntry:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            raise CorruptLayerError("eStargz TOC entry lacks a name")
        kwargs: dict[str, Any] = {}
        for attr, key in cls._KEYS:
            if key in obj:
                kwargs[attr] = obj[key]
        try:
            kwargs["xattrs"] = {
                k: base64.b64decode(v) for k, v in (obj.get("xattrs") or {}).items()
            }
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise CorruptLayerError(
                f"eStargz TOC entry {obj['name']!r}: {exc}"
            ) from exc


def encode_toc(entries: list[TOCEntry]) -> bytes:
    """The TOC JSON: compact (it is fetched on every lazy open), UTF-8."""
    toc = {"version": 1, "entries": [entry.to_json() for entry in entries]}
    text = json.dumps(toc, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "replace")


def decode_toc(data: bytes) -> list[TOCEntry]:
    try:
        toc = json.loads(data)
    except ValueError as exc:
        raise CorruptLayerError(f"eStargz TOC is not valid JSON: {exc}") from exc
    if not isinstance(toc, dict) or toc.get("version") != 1:
        raise CorruptLayerError("eStargz TOC has an unsupported version")
    entries = toc.get("entries")
    if not isinstance(entries, list):
        raise CorruptLayerError("eStargz TOC has no entries list")
    return [TOCEntry.from_json(e) for e in entries]
