"""A repository of the embedded registry as the converter's source and sink.

Builds in ``artifactd serve`` read and write the registry's storage directly,
without going through HTTP, but with the same guarantees as a push: every blob
is verified against its digest before it becomes visible, a manifest is
stored only once everything it refers to is in the repository, and each
manifest stored raises the same push event as one pushed over HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from artifactd.errors import DistributionError, RegistryError
from artifactd.oci.model import Descriptor, parse_manifest_or_index
from artifactd.registry.events import PushEvent
from artifactd.registry.server import Registry

#: The actor named in push events of images that builds write.
BUILDER_ACTOR = "artifactd-builder"


class LocalRepository:
    """``name`` in the embedded registry, for reading and writing images."""

    def __init__(self, registry: Registry, name: str) -> None:
        self.registry = registry
        self.storage = registry.storage
        self.name = name

    # ImageSource.

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        record = self.storage.get_manifest(self.name, reference)
        if record is None:
            raise RegistryError(f"{self.name}:{reference} is not in the registry")
        return record.data, record.media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        if not self.storage.repository_has_blob(self.name, desc.digest):
            raise RegistryError(f"blob {desc.digest} is not in {self.name}")
        try:
            return self.storage.open_blob(desc.digest)
        except DistributionError as exc:
            raise RegistryError(f"{self.name}: {exc.message}") from exc

    # ImageSink.

    def has_blob(self, digest: str) -> bool:
        return self.storage.repository_has_blob(self.name, digest)

    def put_blob_stream(self, stream: BinaryIO, desc: Descriptor) -> None:
        try:
            with self.storage.reference_lock():
                self.storage.put_blob(stream, desc.digest, desc.size)
                self.storage.link_blob(self.name, desc.digest)
        except DistributionError as exc:
            raise RegistryError(f"storing {desc.digest}: {exc.message}") from exc

    def put_blob_file(self, path: Path, desc: Descriptor) -> None:
        with path.open("rb") as stream:
            self.put_blob_stream(stream, desc)

    def mount_blob(self, desc: Descriptor) -> bool:
        """Link a blob the registry already stores for any repository."""
        with self.storage.reference_lock():
            if self.storage.blob_size(desc.digest) != desc.size:
                return False
            self.storage.link_blob(self.name, desc.digest)
            return True

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        tag = "" if ":" in reference else reference
        try:
            doc = parse_manifest_or_index(data, media_type)
            digest = self.registry.store_manifest(
                self.name, data, doc.media_type, doc, tag, reference
            )
        except DistributionError as exc:
            raise RegistryError(f"storing manifest of {self.name}: {exc}") from exc
        self.registry.events.publish(
            PushEvent(
                repository=self.name,
                tag=tag,
                digest=digest,
                media_type=doc.media_type,
                size=len(data),
                actor=BUILDER_ACTOR,
            )
        )
        return digest

    def tag_digest(self, tag: str) -> str | None:
        return self.storage.resolve_tag(self.name, tag)
