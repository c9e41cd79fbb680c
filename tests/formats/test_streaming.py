"""Conversion streams: memory stays bounded whatever the layer size."""

from __future__ import annotations

import tarfile
import tracemalloc

from artifactd.formats.estargz import BuildOptions, build_estargz
from artifactd.formats.tar import END_OF_ARCHIVE


class ZeroTar:
    """A plain tar of a few large zero-filled files, produced on the fly."""

    def __init__(self, files: int, size: int) -> None:
        self._parts = []
        for number in range(files):
            info = tarfile.TarInfo(f"big{number}")
            info.size = size
            self._parts += [info.tobuf(format=tarfile.USTAR_FORMAT), size]
        self._parts.append(END_OF_ARCHIVE)
        self.total = sum(p if isinstance(p, int) else len(p) for p in self._parts)

    def read(self, n: int = -1) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, int):
                take = min(n, part)
                if part - take:
                    self._parts[0] = part - take
                else:
                    self._parts.pop(0)
                return bytes(take)
            self._parts.pop(0)
            if len(part) > n:
                self._parts.insert(0, part[n:])
            return part[:n]
        return b""


class Discard:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_a_large_layer_converts_in_bounded_memory():
    source = ZeroTar(files=3, size=100 << 20)  # 300 MiB of payload
    sink = Discard()
    tracemalloc.start()
    try:
        result = build_estargz(source, sink, BuildOptions(level=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == sink.size
    assert result.uncompressed_size > 300 << 20
    # Members in flight are bounded (a few 4 MiB chunks), not the layer size.
    assert peak < 64 << 20, f"peak traced memory {peak / 2**20:.0f} MiB"
