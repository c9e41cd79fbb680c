"""OCI image layouts: ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``.

Writes are crash safe: a blob is written to a temporary file in the layout,
checked against its digest and renamed into place; ``index.json`` is replaced
atomically. A :class:`LayoutWriter` stages every blob of a conversion aside and
publishes them together, so a failed conversion leaves the layout as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from artifactd.errors import DigestError, LayoutError, OCIError
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import Digester, digest_hex, validate_digest
from artifactd.oci.model import Descriptor, Index, canonical_json

_COPY_BUFFER = 1 << 20


def blob_path(root: Path, digest: str) -> Path:
    algorithm = validate_digest(digest).split(":", 1)[0]
    return root / "blobs" / algorithm / digest_hex(digest)


def _file_mode() -> int:
    """0644 less the process umask: what an ordinary file write would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask & ~0o111 | 0o400


def _fsync_replace(tmp: Path, target: Path) -> None:
    with open(tmp, "rb+") as handle:
        os.fchmod(handle.fileno(), _file_mode())
        os.fsync(handle.fileno())
    os.replace(tmp, target)


class Layout:
    """Read access to an OCI image layout, plus atomic index updates."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Layout:
        layout = cls(root)
        marker = layout.root / "oci-layout"
        try:
            version = json.loads(marker.read_bytes()).get("imageLayoutVersion")
        except FileNotFoundError as exc:
            raise LayoutError(f"{layout.root} is not an OCI image layout") from exc
        except (ValueError, AttributeError) as exc:
            raise LayoutError(f"{marker} is malformed") from exc
        if not isinstance(version, str) or not version.startswith("1."):
            raise LayoutError(f"{marker}: unsupported imageLayoutVersion {version!r}")
        return layout

    # Reading.

    def index(self) -> Index:
        path = self.root / "index.json"
        try:
            return Index.from_bytes(path.read_bytes(), mt.OCI_INDEX)
        except FileNotFoundError:
            return Index(mt.OCI_INDEX, [])
        except OCIError as exc:
            raise LayoutError(f"{path}: {exc}") from exc

    def tags(self) -> dict[str, Descriptor]:
        return {
            desc.annotations[mt.ANNOTATION_REF_NAME]: desc
            for desc in self.index().manifests
            if mt.ANNOTATION_REF_NAME in desc.annotations
        }

    def resolve(self, tag: str = "", digest: str = "") -> Descriptor:
        """The descriptor a tag (or digest) names; with neither, the only one."""
        manifests = self.index().manifests
        if digest:
            for desc in manifests:
                if desc.digest == digest:
                    return desc
            if self.has_blob(digest):
                raise LayoutError(
                    f"{self.root}: {digest} is a blob, "
                    "not a manifest listed in index.json"
                )
            raise LayoutError(f"{self.root}: no manifest {digest}")
        if tag:
            found = self.tags().get(tag)
            if found is None:
                known = ", ".join(sorted(self.tags())) or "none"
                raise LayoutError(f"{self.root}: no tag {tag!r} (tags: {known})")
            return found
        if len(manifests) != 1:
            raise LayoutError(
                f"{self.root} holds {len(manifests)} manifests; name a tag"
            )
        return manifests[0]

    def has_blob(self, digest: str) -> bool:
        return blob_path(self.root, digest).is_file()

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(blob_path(self.root, digest), "rb")
        except FileNotFoundError as exc:
            raise LayoutError(f"{self.root}: blob {digest} is missing") from exc

    def read_blob(self, desc: Descriptor, limit: int = 64 << 20) -> bytes:
        """Read a small blob whole (manifest, config), verifying digest and size."""
        if desc.size > limit:
            raise LayoutError(f"blob {desc.digest} is too large to read whole")
        with self.open_blob(desc.digest) as handle:
            data = handle.read(limit + 1)
        digester = Digester(desc.digest.split(":", 1)[0])
        digester.update(data)
        if len(data) != desc.size or digester.digest() != desc.digest:
            raise DigestError(
                f"blob {desc.digest} in {self.root} does not match its descriptor "
                f"({len(data)} bytes, digest {digester.digest()})"
            )
        return data

    def blob_size(self, digest: str) -> int:
        return blob_path(self.root, digest).stat().st_size

    def iter_blobs(self) -> Iterator[str]:
        blobs = self.root / "blobs"
        if not blobs.is_dir():
            return
        for algorithm in sorted(blobs.iterdir()):
            for path in sorted(algorithm.iterdir()):
                if not path.name.startswith("."):
                    yield f"{algorithm.name}:{path.name}"

    # Writing.

    def update_index(self, tag: str, desc: Descriptor) -> None:
        """Point ``tag`` at ``desc`` (or add an untagged entry), atomically."""
        index = self.index()
        entry = Descriptor(
            desc.media_type,
            desc.digest,
            desc.size,
            dict(desc.annotations),
            desc.platform,
        )
        if tag:
            entry.annotations[mt.ANNOTATION_REF_NAME] = tag
            index.manifests = [
                d
                for d in index.manifests
                if d.annotations.get(mt.ANNOTATION_REF_NAME) != tag
            ]
        else:
            index.manifests = [d for d in index.manifests if d.digest != desc.digest]
        index.manifests.append(entry)
        self._write_atomic("index.json", index.to_bytes())

    def _write_atomic(self, name: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), _file_mode())
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def init_layout(root: str | os.PathLike[str]) -> Layout:
    """Create an empty layout at ``root`` (which may exist and be empty)."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = path / "oci-layout"
    if not marker.exists():
        marker.write_bytes(
            canonical_json({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION})
        )
    if not (path / "index.json").exists():
        (path / "index.json").write_bytes(Index(mt.OCI_INDEX, []).to_bytes())
    return Layout(path)


class LayoutWriter:
    """Stages blobs for a layout and publishes them all at once.

    Blobs go to a staging folder inside the destination's parent (the same
    filesystem, so publishing is a rename). :meth:`commit` moves them into the
    layout, creating it if needed, then updates ``index.json``; :meth:`abort`
    (or leaving the ``with`` block on an exception) removes the staging folder
    and leaves the destination untouched.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        parent = self.root.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(
            tempfile.mkdtemp(dir=parent, prefix=f".{self.root.name}.staging-")
        )
        self._staged: dict[str, Path] = {}

    def __enter__(self) -> LayoutWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.abort()

    def has_blob(self, digest: str) -> bool:
        return digest in self._staged or blob_path(self.root, digest).is_file()

    def temp_file(self) -> tuple[BinaryIO, Path]:
        """An open file in the staging folder, for a blob of unknown digest."""
        fd, name = tempfile.mkstemp(dir=self.staging, prefix=".blob-")
        return os.fdopen(fd, "wb"), Path(name)

    def add_file(self, path: Path, digest: str) -> None:
        """Stage a finished temporary file (from :meth:`temp_file`) as ``digest``."""
        validate_digest(digest)
        if self.has_blob(digest):
            path.unlink(missing_ok=True)
            return
        target = self.staging / digest.replace(":", "-")
        os.replace(path, target)
        self._staged[digest] = target

    def add_bytes(self, data: bytes, digest: str) -> None:
        digester = Digester(digest.split(":", 1)[0])
        digester.update(data)
        if digester.digest() != digest:
            raise DigestError(f"blob bytes do not match {digest}")
        if self.has_blob(digest):
            return
        handle, path = self.temp_file()
        with handle:
            handle.write(data)
        self.add_file(path, digest)

    def add_stream(self, stream: BinaryIO, desc: Descriptor) -> None:
        """Copy a blob from a stream, verifying its digest and size."""
        if self.has_blob(desc.digest):
            return
        handle, path = self.temp_file()
        digester = Digester(desc.digest.split(":", 1)[0])
        try:
            with handle:
                while chunk := stream.read(_COPY_BUFFER):
                    digester.update(chunk)
                    handle.write(chunk)
            if digester.digest() != desc.digest or digester.size != desc.size:
                raise DigestError(
                    f"blob {desc.digest} copied as {digester.size} bytes with digest "
                    f"{digester.digest()}"
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.add_file(path, desc.digest)

    def commit(self, tags: list[tuple[str, Descriptor]]) -> Layout:
        """Publish staged blobs, then point each tag at its descriptor."""
        layout = init_layout(self.root)
        for digest, staged in self._staged.items():
            target = blob_path(self.root, digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_replace(staged, target)
        for tag, desc in tags:
            layout.update_index(tag, desc)
        self.abort()
        return layout

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._staged.clear()


class LayoutSource:
    """Reads images from a layout: the converter's source side."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        """Manifest bytes and media type for a tag or digest ("" = the only one)."""
        if reference.startswith("sha256:") or reference.startswith("sha512:"):
            desc = self._by_digest(reference)
        else:
            desc = self.layout.resolve(tag=reference)
        return self.layout.read_blob(desc), desc.media_type

    def _by_digest(self, digest: str) -> Descriptor:
        for desc in self.layout.index().manifests:
            if desc.digest == digest:
                return desc
        # A child manifest of an index is a blob, not an index.json entry.
        size = self.layout.blob_size(digest) if self.layout.has_blob(digest) else -1
        if size < 0:
            raise LayoutError(f"{self.layout.root}: no manifest {digest}")
        return Descriptor("", digest, size)

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.layout.open_blob(desc.digest)


class LayoutSink:
    """Writes images into a layout, atomically: nothing shows until commit."""

    def __init__(self, root: str | os.PathLike[str], tag: str = "") -> None:
        self._writer = LayoutWriter(root)
        self._tag = tag
        self._tags: list[tuple[str, Descriptor]] = []
        self.work_dir = self._writer.staging

    def has_blob(self, digest: str) -> bool:
        return self._writer.has_blob(digest)

    def put_blob_stream(self, stream: BinaryIO, desc: Descriptor) -> None:
        self._writer.add_stream(stream, desc)

    def put_blob_file(self, path: Path, desc: Descriptor) -> None:
        self._writer.add_file(path, desc.digest)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        desc = Descriptor.for_bytes(media_type, data)
        self._writer.add_bytes(data, desc.digest)
        if reference:
            self._tags.append((reference, desc))
        return desc.digest

    def commit(self) -> Layout:
        return self._writer.commit(self._tags)

    def abort(self) -> None:
        self._writer.abort()
