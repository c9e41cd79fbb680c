"""``artifactd convert SRC DST``: turn an image into an accelerated image."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from artifactd.errors import ConfigError
from artifactd.formats.estargz import DEFAULT_CHUNK_SIZE, DEFAULT_LEVEL, BuildOptions
from artifactd.formats.image import (
    ConvertOptions,
    ImageSink,
    ImageSource,
    LayerEvent,
    convert_image,
)
from artifactd.oci.layout import Layout, LayoutSink, LayoutSource
from artifactd.oci.model import Platform
from artifactd.oci.reference import (
    LayoutReference,
    RegistryReference,
    parse_reference,
)

#: Default guard against decompression bombs: 64 GiB uncompressed per layer.
DEFAULT_MAX_LAYER_SIZE = 64 << 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an image to eStargz",
        description=(
            "Convert SRC to an accelerated (eStargz) image at DST. References: "
            "oci:DIR[:TAG] (an OCI image layout) or docker://HOST/REPO[:TAG]."
        ),
    )
    parser.add_argument("source", metavar="SRC")
    parser.add_argument("destination", metavar="DST")
    parser.add_argument("--format", choices=["estargz"], default="estargz")
    parser.add_argument(
        "--chunk-size",
        type=_positive_size,
        default=DEFAULT_CHUNK_SIZE,
        help="bytes per chunk of large files (default 4 MiB; K/M suffixes work)",
    )
    parser.add_argument(
        "--compression-level",
        type=int,
        choices=range(0, 10),
        default=DEFAULT_LEVEL,
        metavar="0-9",
        help="gzip level (default 9, as the reference builder)",
    )
    parser.add_argument(
        "--prioritized-files",
        metavar="FILE",
        help="file listing absolute paths to place first, one per line",
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT]",
        help="convert only this platform of an index (repeatable)",
    )
    parser.add_argument(
        "--max-layer-size",
        type=_positive_size,
        default=DEFAULT_MAX_LAYER_SIZE,
        help="refuse layers that decompress past this size (default 64G)",
    )
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "plain", "none"],
        default="auto",
        help="progress display (default: a bar on a terminal, lines otherwise)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    prioritized = _read_prioritized(args.prioritized_files)
    options = ConvertOptions(
        build=BuildOptions(
            level=args.compression_level,
            chunk_size=args.chunk_size,
            prioritized_files=prioritized,
            max_uncompressed_size=args.max_layer_size,
        ),
        platforms=[Platform.parse(p) for p in args.platform],
    )
    source_ref = parse_reference(args.source)
    dest_ref = parse_reference(args.destination)
    mode = args.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "plain"
    reporter = Reporter(sys.stderr, mode)

    started = time.monotonic()
    source, reference = _open_source(source_ref)
    sink, tag, finish, abort = _open_sink(dest_ref, source_ref)
    try:
        desc = convert_image(
            source,
            sink,
            reference,
            tag,
            options,
            reporter,
            getattr(sink, "work_dir", None),
        )
        finish()
    except BaseException:
        abort()
        raise
    reporter.done()
    seconds = time.monotonic() - started
    print(f"{args.destination} {desc.digest} ({seconds:.1f}s)")
    return 0


def _open_source(ref: LayoutReference | RegistryReference) -> tuple[ImageSource, str]:
    """The source, and the reference (tag or digest) of the image in it."""
    if isinstance(ref, RegistryReference):
        from artifactd.registry.client import open_registry_source

        return open_registry_source(ref), ref.reference
    layout = Layout.open(ref.path)
    if ref.digest or ref.tag:
        return LayoutSource(layout), ref.digest or ref.tag
    return LayoutSource(layout), layout.resolve().digest


def _open_sink(
    dest: LayoutReference | RegistryReference,
    source: LayoutReference | RegistryReference,
) -> tuple[ImageSink, str, Callable[[], object], Callable[[], object]]:
    """The sink, the tag to write, and what to call on success and on failure.

    The tag defaults to the source's; a layout destination shows nothing until
    the conversion succeeded.
    """
    if dest.digest:
        raise ConfigError("the destination must be a tag, not a digest")
    tag = dest.tag or source.tag or "latest"
    if isinstance(dest, RegistryReference):
        from artifactd.registry.client import open_registry_sink

        same_host = isinstance(source, RegistryReference) and source.host == dest.host
        mount_from = (source.repository,) if same_host else ()
        return open_registry_sink(dest, mount_from), tag, _nothing, _nothing
    sink = LayoutSink(dest.path)
    return sink, tag, sink.commit, sink.abort


def _nothing() -> None:
    return None


def _read_prioritized(path: str | None) -> list[str]:
    if not path:
        return []
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read prioritized files list {path}: {exc}") from exc
    files = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("/"):
            raise ConfigError(f"{path}:{number}: {line!r} is not an absolute path")
        files.append(line)
    return files


def _positive_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        number = int(value[: len(value) - len(unit)]) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return number


class Reporter:
    """Shows layer progress: a redrawn bar on a terminal, or one line per layer."""

    def __init__(self, stream: TextIO, mode: str) -> None:
        self._stream = stream
        self._mode = mode
        self._layers: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._last_draw = 0.0

    def __call__(self, event: LayerEvent) -> None:
        with self._lock:
            self._layers[event.digest] = (event.done, event.total)
            if event.finished and self._mode == "plain":
                converted = event.converted
                size = converted.size if converted else 0
                what = "converted" if event.seconds else "copied"
                self._stream.write(
                    f"layer {event.digest[:19]} {what}: {_mb(event.total)} -> "
                    f"{_mb(size)} in {event.seconds:.1f}s\n"
                )
                self._stream.flush()
            elif self._mode == "bar":
                self._draw(force=event.finished)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        done = sum(d for d, _ in self._layers.values())
        total = sum(t for _, t in self._layers.values()) or 1
        width = 30
        filled = int(width * min(done, total) / total)
        finished = sum(1 for d, t in self._layers.values() if d >= t)
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(
            f"\r[{bar}] {100 * done / total:5.1f}% {_mb(done)}/{_mb(total)} "
            f"layers {finished}/{len(self._layers)}"
        )
        self._stream.flush()

    def done(self) -> None:
        if self._mode == "bar" and self._layers:
            self._draw(force=True)
            self._stream.write("\n")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
