"""Where the embedded registry keeps blobs, uploads, manifests and tags.

:class:`RegistryStorage` is the small interface the server and the garbage
collector use; :class:`FilesystemStorage` implements it on a local folder::

    blobs/sha256/<2 hex>/<hex>                 content, named by digest
    uploads/<uuid>/data, owner                 an upload in progress
    repositories/<name>/_layers/sha256/<hex>   the blob is part of <name>
    repositories/<name>/_manifests/sha256/<hex>  a manifest revision (its media type)
    repositories/<name>/_tags/<tag>            the digest the tag points at
    repositories/<name>/_referrers/<subject hex>/<hex>  referrer descriptor JSON

Every file is written to a temporary name and renamed into place, and a
blob is renamed into ``blobs/`` only after its digest and size checked out.
A manifest is stored, then linked, then tagged, each step a rename, so a
crash mid-push leaves at worst an unreferenced blob, which garbage
collection removes; readers never see a half-written file. Repository name
components cannot start with ``_``, so the ``_layers``-style folders never
collide with a nested repository.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from artifactd.errors import DistributionError, StorageError
from artifactd.oci.digest import Digester, digest_algorithm, digest_hex, validate_digest

log = logging.getLogger(__name__)

_COPY_BUFFER = 1 << 20
_UUID_HEX = frozenset("0123456789abcdef-")


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest: its bytes, media type and digest."""

    data: bytes
    media_type: str
    digest: str


class RegistryStorage(Protocol):
    """The operations the registry server and garbage collector need.

    Guarantees every backend keeps: a blob becomes visible only whole and
    verified; repository links, manifests and tags change atomically; a
    name that was never written reads as absent, never as an error.
    """

    def blob_size(self, digest: str) -> int | None: ...

    def blob_stat(self, digest: str) -> tuple[int, float] | None: ...

    def touch_blob(self, digest: str) -> None: ...

    def reference_lock(
        self, exclusive: bool = False
    ) -> AbstractContextManager[None]: ...

    def open_blob(self, digest: str) -> BinaryIO: ...

    def put_blob(self, stream: BinaryIO, digest: str, size: int | None) -> int: ...

    def delete_blob(self, digest: str) -> None: ...

    def iter_blobs(self) -> Iterator[tuple[str, float]]: ...

    def remove_stale_temp_files(self, older_than: float) -> int: ...

    def start_upload(self, repository: str) -> str: ...

    def upload_size(self, repository: str, upload_id: str) -> int: ...

    def append_upload(
        self, repository: str, upload_id: str, data: bytes, offset: int
    ) -> int: ...

    def commit_upload(self, repository: str, upload_id: str, digest: str) -> int: ...

    def cancel_upload(self, repository: str, upload_id: str) -> None: ...

    def iter_uploads(self) -> Iterator[tuple[str, float]]: ...

    def remove_upload(self, upload_id: str) -> None: ...

    def link_blob(self, repository: str, digest: str) -> None: ...

    def repository_has_blob(self, repository: str, digest: str) -> bool: ...

    def unlink_blob(self, repository: str, digest: str) -> bool: ...

    def layer_links(self, repository: str) -> Iterator[str]: ...

    def put_manifest(
        self,
        repository: str,
        data: bytes,
        media_type: str,
        tag: str = "",
        subject: str = "",
        referrer: dict[str, Any] | None = None,
    ) -> str: ...

    def resolve_tag(self, repository: str, tag: str) -> str | None: ...

    def get_manifest(
        self, repository: str, reference: str
    ) -> ManifestRecord | None: ...

    def delete_manifest(self, repository: str, digest: str) -> bool: ...

    def delete_tag(self, repository: str, tag: str) -> bool: ...

    def list_tags(self, repository: str) -> list[str]: ...

    def list_manifests(self, repository: str) -> list[str]: ...

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]]: ...

    def repository_exists(self, repository: str) -> bool: ...

    def list_repositories(self) -> list[str]: ...


class FilesystemStorage:
    """:class:`RegistryStorage` on a local folder (see the module docstring).

    Chunked uploads keep a running digest in memory, keyed by upload and
    offset, so committing a blob does not read it again; when that state is
    missing (another process took the chunk, or the service restarted) the
    digest is recomputed from the file.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        for sub in ("blobs", "uploads", "repositories", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._digesters: dict[str, Digester] = {}
        self._lock = threading.Lock()

    # Blobs.

    def _blob_path(self, digest: str) -> Path:
        hex_part = digest_hex(digest)
        return self.root / "blobs" / digest_algorithm(digest) / hex_part[:2] / hex_part

    def blob_size(self, digest: str) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def blob_stat(self, digest: str) -> tuple[int, float] | None:
        """Size and modification time of a blob, or None."""
        try:
            stat = self._blob_path(digest).stat()
        except FileNotFoundError:
            return None
        return stat.st_size, stat.st_mtime

    def remove_stale_temp_files(self, older_than: float) -> int:
        """Delete temporary files left by a crash; how many were removed."""
        removed = 0
        for path in (self.root / "tmp").iterdir():
            try:
                if time.time() - path.stat().st_mtime >= older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def touch_blob(self, digest: str) -> None:
        """Mark a blob as just used, so a running garbage collection spares it."""
        try:
            os.utime(self._blob_path(digest))
        except FileNotFoundError:
            pass

    def open_blob(self, digest: str) -> BinaryIO:
        try:
            return open(self._blob_path(digest), "rb")
        except FileNotFoundError as exc:
            raise DistributionError(
                "BLOB_UNKNOWN", f"blob {digest} is unknown", 404
            ) from exc

    def put_blob(self, stream: BinaryIO, digest: str, size: int | None) -> int:
        """Store a blob from a stream, verified; returns its size."""
        validate_digest(digest)
        digester = Digester(digest_algorithm(digest))
        handle, tmp = self._temp_file()
        try:
            with handle:
                while chunk := stream.read(_COPY_BUFFER):
                    digester.update(chunk)
                    handle.write(chunk)
            self._check(digester, digest, size)
            self._publish(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)
        return digester.size

    def put_blob_bytes(self, data: bytes, digest: str) -> None:
        digester = Digester(digest_algorithm(digest))
        digester.update(data)
        self._check(digester, digest, len(data))
        if self.blob_size(digest) == len(data):
            self.touch_blob(digest)
            return
        handle, tmp = self._temp_file()
        try:
            with handle:
                handle.write(data)
            self._publish(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)

    def delete_blob(self, digest: str) -> None:
        self._blob_path(digest).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored blob's digest and modification time."""
        for algorithm in sorted((self.root / "blobs").iterdir()):
            for prefix in sorted(algorithm.iterdir()):
                for path in sorted(prefix.iterdir()):
                    try:
                        mtime = path.stat().st_mtime
                    except FileNotFoundError:
                        continue
                    yield f"{algorithm.name}:{path.name}", mtime

    def _temp_file(self) -> tuple[BinaryIO, Path]:
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
        return os.fdopen(fd, "wb"), Path(name)

    @staticmethod
    def _check(digester: Digester, digest: str, size: int | None) -> None:
        if size is not None and digester.size != size:
            raise DistributionError(
                "SIZE_INVALID",
                f"blob has {digester.size} bytes, {size} were declared",
                400,
            )
        if digester.digest() != digest:
            raise DistributionError(
                "DIGEST_INVALID",
                f"content digest {digester.digest()} does not match {digest}",
                400,
            )

    def _publish(self, tmp: Path, digest: str) -> None:
        # Identical content under the same name: whichever rename lands last
        # wins, and both leave the same bytes, so concurrent pushes are safe.
        target = self._blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)

    @contextmanager
    def reference_lock(self, exclusive: bool = False) -> Iterator[None]:
        """Held shared while a manifest's blobs are checked and it is stored, and
        exclusive while garbage collection deletes blobs, across processes.

        A blob a manifest push saw as present is therefore never deleted before
        the manifest that references it is visible.
        """
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # Uploads.

    def _upload_dir(self, repository: str, upload_id: str) -> Path:
        if not upload_id or not set(upload_id) <= _UUID_HEX or len(upload_id) > 64:
            raise _upload_unknown(upload_id)
        path = self.root / "uploads" / upload_id
        try:
            owner = (path / "owner").read_text()
        except FileNotFoundError as exc:
            raise _upload_unknown(upload_id) from exc
        if owner != repository:
            raise _upload_unknown(upload_id)
        return path

    def start_upload(self, repository: str) -> str:
        upload_id = str(uuid.uuid4())
        path = self.root / "uploads" / upload_id
        path.mkdir()
        (path / "data").touch()
        _write_atomic(path / "owner", repository.encode(), self.root / "tmp")
        with self._lock:
            self._digesters[upload_id] = Digester()
        return upload_id

    def upload_size(self, repository: str, upload_id: str) -> int:
        return (self._upload_dir(repository, upload_id) / "data").stat().st_size

    def append_upload(
        self, repository: str, upload_id: str, data: bytes, offset: int
    ) -> int:
        """Append ``data`` at ``offset``, which must be the current size."""
        path = self._upload_dir(repository, upload_id) / "data"
        with open(path, "ab") as handle:
            # One writer at a time: a client resuming after a cut connection
            # may race the server still saving what that connection sent.
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = handle.seek(0, os.SEEK_END)
            if current != offset:
                raise DistributionError(
                    "BLOB_UPLOAD_INVALID",
                    f"chunk starts at {offset}, the upload holds {current} bytes",
                    416,
                )
            handle.write(data)
            new_size = handle.tell()
        with self._lock:
            digester = self._digesters.get(upload_id)
            if digester is not None and digester.size == offset:
                digester.update(data)
            else:
                self._digesters.pop(upload_id, None)
        return new_size

    def commit_upload(self, repository: str, upload_id: str, digest: str) -> int:
        """Verify the upload against ``digest`` and publish it; returns its size."""
        validate_digest(digest)
        path = self._upload_dir(repository, upload_id)
        data = path / "data"
        size = data.stat().st_size
        with self._lock:
            digester = self._digesters.get(upload_id)
        if (
            digester is None
            or digester.size != size
            or digest_algorithm(digest) != digester.algorithm
        ):
            digester = Digester(digest_algorithm(digest))
            with open(data, "rb") as handle:
                while chunk := handle.read(_COPY_BUFFER):
                    digester.update(chunk)
        try:
            self._check(digester, digest, None)
        except DistributionError:
            self.cancel_upload(repository, upload_id)
            raise
        self._publish(data, digest)
        self.cancel_upload(repository, upload_id)
        return size

    def cancel_upload(self, repository: str, upload_id: str) -> None:
        path = self._upload_dir(repository, upload_id)
        with self._lock:
            self._digesters.pop(upload_id, None)
        shutil.rmtree(path, ignore_errors=True)

    def iter_uploads(self) -> Iterator[tuple[str, float]]:
        """Every upload in progress and when it last received data."""
        for path in (self.root / "uploads").iterdir():
            try:
                yield path.name, (path / "data").stat().st_mtime
            except FileNotFoundError:
                continue

    def remove_upload(self, upload_id: str) -> None:
        with self._lock:
            self._digesters.pop(upload_id, None)
        shutil.rmtree(self.root / "uploads" / upload_id, ignore_errors=True)

    # Repositories.

    def _repo(self, repository: str) -> Path:
        return self.root / "repositories" / repository

    def _layer_link(self, repository: str, digest: str) -> Path:
        return (
            self._repo(repository)
            / "_layers"
            / digest_algorithm(digest)
            / digest_hex(digest)
        )

    def link_blob(self, repository: str, digest: str) -> None:
        link = self._layer_link(repository, digest)
        self.touch_blob(digest)
        if link.exists():
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(link, b"", self.root / "tmp")

    def repository_has_blob(self, repository: str, digest: str) -> bool:
        return self._layer_link(repository, digest).exists() and (
            self.blob_size(digest) is not None
        )

    def unlink_blob(self, repository: str, digest: str) -> bool:
        link = self._layer_link(repository, digest)
        try:
            link.unlink()
        except FileNotFoundError:
            return False
        return True

    def layer_links(self, repository: str) -> Iterator[str]:
        root = self._repo(repository) / "_layers"
        yield from _digests_under(root)

    # Manifests and tags.

    def _revision(self, repository: str, digest: str) -> Path:
        return (
            self._repo(repository)
            / "_manifests"
            / digest_algorithm(digest)
            / digest_hex(digest)
        )

    def put_manifest(
        self,
        repository: str,
        data: bytes,
        media_type: str,
        tag: str = "",
        subject: str = "",
        referrer: dict[str, Any] | None = None,
    ) -> str:
        """Store a manifest's bytes, link it, then (if given) tag it."""
        digester = Digester()
        digester.update(data)
        digest = digester.digest()
        self.put_blob_bytes(data, digest)
        tmp = self.root / "tmp"
        revision = self._revision(repository, digest)
        revision.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(revision, media_type.encode(), tmp)
        if subject and referrer is not None:
            entry = self._repo(repository) / "_referrers" / digest_hex(subject)
            entry.mkdir(parents=True, exist_ok=True)
            _write_atomic(
                entry / digest_hex(digest), json.dumps(referrer).encode(), tmp
            )
        if tag:
            tags = self._repo(repository) / "_tags"
            tags.mkdir(parents=True, exist_ok=True)
            _write_atomic(tags / tag, digest.encode(), tmp)
        return digest

    def resolve_tag(self, repository: str, tag: str) -> str | None:
        try:
            return (self._repo(repository) / "_tags" / tag).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def get_manifest(self, repository: str, reference: str) -> ManifestRecord | None:
        """A manifest by tag or digest, or None when the repository lacks it."""
        digest = (
            reference if ":" in reference else self.resolve_tag(repository, reference)
        )
        if digest is None:
            return None
        try:
            media_type = self._revision(repository, digest).read_text()
        except FileNotFoundError:
            return None
        try:
            with self.open_blob(digest) as handle:
                data = handle.read()
        except DistributionError as exc:
            raise StorageError(
                f"manifest {digest} of {repository} is linked but its blob is gone"
            ) from exc
        return ManifestRecord(data, media_type, digest)

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Remove a revision, every tag pointing at it, and its referrer entries."""
        revision = self._revision(repository, digest)
        if not revision.exists():
            return False
        for tag in self.list_tags(repository):
            if self.resolve_tag(repository, tag) == digest:
                self.delete_tag(repository, tag)
        referrers = self._repo(repository) / "_referrers"
        if referrers.is_dir():
            for entry in referrers.iterdir():
                (entry / digest_hex(digest)).unlink(missing_ok=True)
        revision.unlink(missing_ok=True)
        return True

    def delete_tag(self, repository: str, tag: str) -> bool:
        try:
            (self._repo(repository) / "_tags" / tag).unlink()
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def list_tags(self, repository: str) -> list[str]:
        tags = self._repo(repository) / "_tags"
        if not tags.is_dir():
            return []
        return sorted(p.name for p in tags.iterdir() if not p.name.startswith("."))

    def list_manifests(self, repository: str) -> list[str]:
        return list(_digests_under(self._repo(repository) / "_manifests"))

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose ``subject`` is ``digest``."""
        entry = self._repo(repository) / "_referrers" / digest_hex(digest)
        if not entry.is_dir():
            return []
        found = []
        for path in sorted(entry.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                found.append(json.loads(path.read_bytes()))
            except (FileNotFoundError, ValueError):
                continue
        return found

    def repository_exists(self, repository: str) -> bool:
        path = self._repo(repository)
        return (path / "_manifests").is_dir() or (path / "_layers").is_dir()

    def list_repositories(self) -> list[str]:
        root = self._repo("")
        names = []
        for dirpath, dirnames, _ in os.walk(root):
            if "_manifests" in dirnames or "_layers" in dirnames:
                names.append(Path(dirpath).relative_to(root).as_posix())
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(names)


def _digests_under(root: Path) -> Iterator[str]:
    if not root.is_dir():
        return
    for algorithm in sorted(root.iterdir()):
        for path in sorted(algorithm.iterdir()):
            if not path.name.startswith("."):
                yield f"{algorithm.name}:{path.name}"


def _write_atomic(target: Path, data: bytes, tmp_dir: Path) -> None:
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="meta-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _upload_unknown(upload_id: str) -> DistributionError:
    return DistributionError(
        "BLOB_UPLOAD_UNKNOWN", f"upload {upload_id!r} is unknown", 404
    )
