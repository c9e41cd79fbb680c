"""One artifact build: a source image in, an accelerated image out.

The pipeline reads the source through an :class:`ImageSource`, converts it,
and writes the result through an :class:`ImageSink`. The converter pushes
every blob and child manifest first and the target tag last, so a build that
fails or is canceled never leaves the tag pointing at anything partial. Each
step writes one line of the task's log, for people: what happened, to which
layer, how big and how long.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from artifactd.errors import ConversionCanceled
from artifactd.formats.estargz import BuildOptions
from artifactd.formats.image import (
    ConvertOptions,
    ImageConverter,
    ImageSink,
    ImageSource,
    LayerCache,
    LayerEvent,
)
from artifactd.oci.digest import sha256_digest
from artifactd.oci.model import Index, Manifest, parse_manifest_or_index

LogFunction = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    repository: str  # "namespace/name"
    source_tag: str
    target_tag: str
    #: The digest pushed, so a tag moved since the push does not change the build.
    source_digest: str = ""
    prioritized_files: Sequence[str] = ()
    build_type: str = "IMAGE_TO_ACCELERATED_IMAGE"
    format: str = "estargz"


@dataclass
class ImageSummary:
    digest: str = ""
    size: int = 0
    layers: int = 0
    platforms: list[str] = field(default_factory=list)


@dataclass
class BuildOutcome:
    source: ImageSummary
    target: ImageSummary
    seconds: float
    #: Layer conversion time, added up over layers (they run in parallel).
    convert_seconds: float
    #: Layers this build converted itself (not copied, not reused).
    layers_converted: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


def summarize(source: ImageSource, reference: str) -> ImageSummary:
    """Digest, total layer size, layer count and platforms of an image."""
    data, media_type = source.get_manifest(reference)
    doc = parse_manifest_or_index(data, media_type)
    summary = ImageSummary(digest=sha256_digest(data))
    _add(source, doc, summary)
    return summary


def _add(source: ImageSource, doc: Manifest | Index, summary: ImageSummary) -> None:
    if isinstance(doc, Manifest):
        summary.size += sum(layer.size for layer in doc.layers)
        summary.layers += len(doc.layers)
        return
    for child in doc.manifests:
        if child.platform is not None:
            summary.platforms.append(str(child.platform))
        data, media_type = source.get_manifest(child.digest)
        _add(source, parse_manifest_or_index(data, media_type), summary)


class _LayerLog:
    """Turns converter events into one log line per finished layer."""

    def __init__(self, log: LogFunction, total: int) -> None:
        self._log = log
        self._total = total
        self._done = 0
        self._lock = threading.Lock()
        self.convert_seconds = 0.0
        self.converted = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def __call__(self, event: LayerEvent) -> None:
        if not event.finished or event.converted is None:
            return
        with self._lock:
            self._done += 1
            number = self._done
            if event.seconds:
                self.convert_seconds += event.seconds
                self.converted += 1
                self.bytes_in += event.total
                self.bytes_out += event.converted.size
        if event.seconds:
            what = (
                f"converted to eStargz {_mb(event.total)} -> "
                f"{_mb(event.converted.size)} in {event.seconds:.1f}s"
            )
        elif event.converted.digest == event.digest:
            what = f"copied as it is ({_mb(event.total)})"
        else:
            what = f"reused an earlier conversion ({_mb(event.converted.size)})"
        self._log(
            f"Layer {number}/{self._total} {event.digest}: {what}, "
            f"now {event.converted.digest}"
        )


def run_build(
    request: BuildRequest,
    source: ImageSource,
    sink: ImageSink,
    log: LogFunction,
    *,
    options: BuildOptions | None = None,
    cancel: threading.Event | None = None,
    cache: LayerCache | None = None,
    compress_pool: ThreadPoolExecutor | None = None,
    work_dir: str | None = None,
) -> BuildOutcome:
    """Build ``request`` and return what was built; raises on failure.

    A canceled build raises :class:`ConversionCanceled` before the target tag
    is written.
    """
    started = time.monotonic()
    reference = request.source_digest or request.source_tag
    name = f"{request.repository}:{request.source_tag}"
    log(f"Pulling {name} ({reference})")
    source_summary = summarize(source, reference)
    platforms = ", ".join(source_summary.platforms)
    log(
        f"Source {name} is {source_summary.digest}: {source_summary.layers} layers, "
        f"{_mb(source_summary.size)}"
        + (f", platforms {platforms}" if platforms else "")
    )

    build = options or BuildOptions()
    build = BuildOptions(
        level=build.level,
        chunk_size=build.chunk_size,
        prioritized_files=tuple(request.prioritized_files),
        max_uncompressed_size=build.max_uncompressed_size,
    )
    if request.prioritized_files:
        log(f"Prioritizing {len(request.prioritized_files)} files for prefetch")
    layer_log = _LayerLog(log, source_summary.layers)
    target = f"{request.repository}:{request.target_tag}"
    converter = ImageConverter(
        source,
        sink,
        ConvertOptions(build=build),
        layer_log,
        work_dir,
        cache,
        cancel,
        compress_pool,
    )
    converting = time.monotonic()
    try:
        with converter:
            desc = converter.convert(reference, request.target_tag)
    except ConversionCanceled:
        log(f"Canceled; {target} was not written")
        raise
    converting = time.monotonic() - converting
    log(f"Pushed and tagged {target} -> {desc.digest}")
    target_summary = ImageSummary(
        digest=desc.digest,
        size=sum(layer.size for m in converter.manifests_written for layer in m.layers),
        layers=sum(len(m.layers) for m in converter.manifests_written),
        platforms=source_summary.platforms,
    )
    seconds = time.monotonic() - started
    log(
        f"Build succeeded in {seconds:.1f}s ({converting:.1f}s converting and "
        f"pushing): {target_summary.layers} layers, "
        f"{_mb(target_summary.size)} (source {_mb(source_summary.size)})"
    )
    return BuildOutcome(
        source_summary,
        target_summary,
        seconds,
        layer_log.convert_seconds,
        layer_log.converted,
        layer_log.bytes_in,
        layer_log.bytes_out,
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
