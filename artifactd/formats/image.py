"""Convert a whole image (a manifest, or an index of them) to eStargz.

The converter reads through an :class:`ImageSource` and writes through an
:class:`ImageSink`, so the same code serves OCI layouts on disk and
registries. Layers are converted in parallel, each distinct source layer once;
layers that are already eStargz, or are not tar layers at all, are copied as
they are. Docker media types become OCI ones, since only OCI descriptors carry
the annotations a lazy-pulling runtime needs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from artifactd.errors import ConversionCanceled, FormatError, OCIError
from artifactd.formats.estargz import BuildOptions, build_estargz
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import VerifyingReader
from artifactd.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_manifest_or_index,
)


@runtime_checkable
class ImageSource(Protocol):
    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """Manifest (or index) bytes and media type, by tag or digest."""
        ...

    def open_blob(self, desc: Descriptor) -> BinaryIO: ...


class ImageSink(Protocol):
    """Where converted images go. A sink may also offer
    ``mount_blob(desc) -> bool``, linking a blob it stores for another
    repository, so cached conversions are reused across repositories."""

    def has_blob(self, digest: str) -> bool: ...

    def put_blob_stream(self, stream: BinaryIO, desc: Descriptor) -> None: ...

    def put_blob_file(self, path: Path, desc: Descriptor) -> None: ...

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        """Store a manifest; tag it when ``reference`` is a tag. Returns its digest."""
        ...


class LayerCache(Protocol):
    """Converted layers remembered across runs, keyed by source layer digest
    and :meth:`BuildOptions.cache_key`, so shared base layers convert once."""

    def get(
        self, source_digest: str, options_key: str
    ) -> tuple[Descriptor, str] | None:
        """The converted layer's descriptor and diff_id, if known."""
        ...

    def put(
        self, source_digest: str, options_key: str, converted: Descriptor, diff_id: str
    ) -> None: ...


@dataclass(frozen=True)
class ConvertOptions:
    build: BuildOptions = field(default_factory=BuildOptions)
    #: Convert only these platforms of an index (empty: all of them).
    platforms: Sequence[Platform] = ()
    #: How many layers to convert at once.
    layer_workers: int = 2
    #: Threads compressing gzip members, shared by all layers.
    compress_workers: int = max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LayerEvent:
    """Progress of one layer: ``done`` of ``total`` source bytes read."""

    digest: str
    done: int
    total: int
    finished: bool = False
    converted: Descriptor | None = None
    seconds: float = 0.0


ProgressCallback = Callable[[LayerEvent], None]


@dataclass
class _Converted:
    descriptor: Descriptor
    diff_id: str


class ImageConverter:
    """One conversion run: its caches and pools live as long as the run."""

    def __init__(
        self,
        source: ImageSource,
        sink: ImageSink,
        options: ConvertOptions | None = None,
        progress: ProgressCallback | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        cache: LayerCache | None = None,
        cancel: threading.Event | None = None,
        compress_pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.source = source
        self.sink = sink
        self.options = options or ConvertOptions()
        self._progress = progress
        self._work_dir = work_dir
        self._cache = cache
        self._cancel = cancel or threading.Event()
        #: Every image manifest this run wrote, in order.
        self.manifests_written: list[Manifest] = []
        self._layers: dict[str, Future[_Converted]] = {}
        self._lock = threading.Lock()
        # A pool handed in is shared with other runs (a build service's workers)
        # and outlives this one.
        self._own_compress_pool = compress_pool is None
        self._compress_pool = compress_pool or ThreadPoolExecutor(
            self.options.compress_workers, thread_name_prefix="estargz-compress"
        )
        self._layer_pool = ThreadPoolExecutor(
            max(1, self.options.layer_workers), thread_name_prefix="estargz-layer"
        )

    def close(self) -> None:
        self._layer_pool.shutdown(wait=True, cancel_futures=True)
        if self._own_compress_pool:
            self._compress_pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ImageConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Manifests and indexes.

    def convert(self, reference: str, target_tag: str = "") -> Descriptor:
        """Convert the image ``reference`` names; tag the result ``target_tag``."""
        data, media_type = self.source.get_manifest(reference)
        doc = parse_manifest_or_index(data, media_type)
        if isinstance(doc, Index):
            return self._convert_index(doc, target_tag)
        return self._convert_manifest(doc, target_tag)

    def _convert_index(self, index: Index, target_tag: str) -> Descriptor:
        selected = [d for d in index.manifests if self._wanted(d)]
        if not selected:
            wanted = ", ".join(str(p) for p in self.options.platforms)
            raise FormatError(f"the image index has no manifest for {wanted}")
        children = []
        for desc in selected:
            child = self.convert(desc.digest)
            child.platform = desc.platform
            child.annotations = {**desc.annotations, **child.annotations}
            children.append(child)
        result = Index(
            media_type=mt.OCI_INDEX,
            manifests=children,
            annotations=dict(index.annotations),
            raw={k: v for k, v in index.raw.items() if k != "subject"},
        )
        data = result.to_bytes()
        self._check_canceled()
        digest = self.sink.put_manifest(target_tag, data, mt.OCI_INDEX)
        return Descriptor(mt.OCI_INDEX, digest, len(data))

    def _wanted(self, desc: Descriptor) -> bool:
        if not self.options.platforms:
            return True
        if desc.platform is None:
            return False
        return any(p.matches(desc.platform) for p in self.options.platforms)

    def _convert_manifest(self, manifest: Manifest, target_tag: str) -> Descriptor:
        config_data = self._read_small_blob(manifest.config)
        config = ImageConfig.from_bytes(config_data)
        if len(config.diff_ids) != len(manifest.layers):
            raise OCIError(
                f"config lists {len(config.diff_ids)} diff_ids for "
                f"{len(manifest.layers)} layers"
            )
        futures = [
            self._layer(layer, diff_id)
            for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
        ]
        converted = [future.result() for future in futures]

        config.diff_ids = [c.diff_id for c in converted]
        config_bytes = config.to_bytes()
        config_desc = Descriptor.for_bytes(mt.OCI_CONFIG, config_bytes)
        self._put_bytes(config_bytes, config_desc)

        result = Manifest(
            media_type=mt.OCI_MANIFEST,
            config=config_desc,
            layers=[c.descriptor for c in converted],
            annotations=dict(manifest.annotations),
            raw={k: v for k, v in manifest.raw.items() if k != "subject"},
        )
        data = result.to_bytes()
        self._check_canceled()
        digest = self.sink.put_manifest(target_tag, data, mt.OCI_MANIFEST)
        self.manifests_written.append(result)
        return Descriptor(mt.OCI_MANIFEST, digest, len(data))

    def _read_small_blob(self, desc: Descriptor) -> bytes:
        with self.source.open_blob(desc) as stream:
            reader = VerifyingReader(stream, desc.digest, desc.size)
            data = reader.read(desc.size + 1)
            reader.read(1)
            reader.verify()
        return data

    def _put_bytes(self, data: bytes, desc: Descriptor) -> None:
        if self.sink.has_blob(desc.digest):
            return
        fd, name = tempfile.mkstemp(dir=self._work_dir, prefix=".config-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self.sink.put_blob_file(Path(name), desc)

    # Layers.

    def _layer(self, layer: Descriptor, diff_id: str) -> Future[_Converted]:
        """The (shared) conversion of one source layer."""
        with self._lock:
            future = self._layers.get(layer.digest)
            if future is None:
                future = self._layer_pool.submit(self._convert_layer, layer, diff_id)
                self._layers[layer.digest] = future
            return future

    def _convert_layer(self, layer: Descriptor, diff_id: str) -> _Converted:
        self._check_canceled()
        if layer.media_type in mt.NOT_DISTRIBUTED_LAYER_TYPES:
            # Fetched by runtimes from its URLs; the registry never holds it.
            return self._report_kept(layer, layer, diff_id)
        if layer.media_type not in mt.CONVERTIBLE_LAYER_TYPES or _is_estargz(layer):
            return self._copy_layer(layer, diff_id)
        cached = self._cached(layer)
        if cached is not None:
            return cached
        try:
            converted = self._build_layer(layer, diff_id)
        except FormatError as exc:
            raise type(exc)(f"layer {layer.digest}: {exc}") from exc
        except OCIError as exc:
            raise FormatError(f"layer {layer.digest}: {exc}") from exc
        if self._cache is not None:
            key = self.options.build.cache_key()
            self._cache.put(layer.digest, key, converted.descriptor, converted.diff_id)
        return converted

    def _cached(self, layer: Descriptor) -> _Converted | None:
        """A conversion of this layer with these options that the sink holds."""
        if self._cache is None:
            return None
        found = self._cache.get(layer.digest, self.options.build.cache_key())
        if found is None:
            return None
        desc, diff_id = found
        # A registry keeps blobs once for all repositories: a sink that can
        # link one it holds elsewhere (a cross-repository mount) says so.
        if not self.sink.has_blob(desc.digest) and not self._mount(desc):
            return None
        self._report(LayerEvent(layer.digest, layer.size, layer.size, True, desc))
        return _Converted(desc, diff_id)

    def _check_canceled(self) -> None:
        if self._cancel.is_set():
            raise ConversionCanceled("conversion canceled")

    def _copy_layer(self, layer: Descriptor, diff_id: str) -> _Converted:
        if not self.sink.has_blob(layer.digest) and not self._mount(layer):
            with self.source.open_blob(layer) as stream:
                self.sink.put_blob_stream(stream, layer)
        media_type = mt.DOCKER_TO_OCI.get(layer.media_type, layer.media_type)
        desc = replace(
            layer, media_type=media_type, annotations=dict(layer.annotations)
        )
        return self._report_kept(layer, desc, diff_id)

    def _mount(self, desc: Descriptor) -> bool:
        mount = getattr(self.sink, "mount_blob", None)
        return mount is not None and mount(desc)

    def _report_kept(
        self, layer: Descriptor, desc: Descriptor, diff_id: str
    ) -> _Converted:
        self._report(LayerEvent(layer.digest, layer.size, layer.size, True, desc))
        return _Converted(desc, diff_id)

    def _build_layer(self, layer: Descriptor, diff_id: str) -> _Converted:
        started = time.monotonic()
        done = 0

        def on_read(n: int) -> None:
            nonlocal done
            self._check_canceled()
            done += n
            self._report(LayerEvent(layer.digest, done, layer.size))

        fd, name = tempfile.mkstemp(dir=self._work_dir, prefix=".layer-")
        path = Path(name)
        try:
            with self.source.open_blob(layer) as stream, os.fdopen(fd, "wb") as out:
                result = build_estargz(
                    stream,
                    out,
                    self.options.build,
                    source_digest=layer.digest,
                    source_size=layer.size,
                    source_diff_id=diff_id,
                    executor=self._compress_pool,
                    progress=on_read,
                )
            annotations = {
                k: v
                for k, v in layer.annotations.items()
                if k not in (mt.ANNOTATION_TOC_DIGEST, mt.ANNOTATION_UNCOMPRESSED_SIZE)
            }
            annotations[mt.ANNOTATION_TOC_DIGEST] = result.toc_digest
            annotations[mt.ANNOTATION_UNCOMPRESSED_SIZE] = str(result.uncompressed_size)
            desc = Descriptor(
                mt.OCI_LAYER_GZIP, result.digest, result.size, annotations
            )
            self.sink.put_blob_file(path, desc)
        finally:
            path.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        self._report(
            LayerEvent(layer.digest, layer.size, layer.size, True, desc, seconds)
        )
        return _Converted(desc, result.diff_id)

    def _report(self, event: LayerEvent) -> None:
        if self._progress is not None:
            self._progress(event)


def _is_estargz(layer: Descriptor) -> bool:
    return (
        layer.media_type in (mt.OCI_LAYER_GZIP, mt.DOCKER_LAYER_GZIP)
        and mt.ANNOTATION_TOC_DIGEST in layer.annotations
    )


def convert_image(
    source: ImageSource,
    sink: ImageSink,
    reference: str,
    target_tag: str = "",
    options: ConvertOptions | None = None,
    progress: ProgressCallback | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    cache: LayerCache | None = None,
    cancel: threading.Event | None = None,
    compress_pool: ThreadPoolExecutor | None = None,
) -> Descriptor:
    """Convert one image; the result is tagged ``target_tag`` in the sink.

    Setting ``cancel`` stops the run at the next block of source bytes, raising
    :class:`ConversionCanceled`; nothing is tagged then.
    """
    with ImageConverter(
        source, sink, options, progress, work_dir, cache, cancel, compress_pool
    ) as converter:
        return converter.convert(reference, target_tag)
