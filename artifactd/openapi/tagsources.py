"""Where tag actions read tags from: the embedded registry, or any registry.

:class:`StorageTags` reads the embedded registry's storage directly;
:class:`DistributionTags` talks HTTP to a registry such as CNCF Distribution
(the scale-out set-up of the architecture). Both offer the
:class:`~artifactd.openapi.services.TagSource` protocol.

Limits of the distribution API, stated plainly: it keeps no tag times, so
``ImageCreate``/``ImageUpdate`` come from the image config's ``created``; and it
deletes manifests, not tags, so a tag whose manifest another tag shares is
refused rather than deleting both.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import httpx

from artifactd.errors import ArtifactdError, OCIError, RegistryError
from artifactd.oci import mediatypes as mt
from artifactd.oci.model import Index, parse_manifest_or_index
from artifactd.openapi.services import TagInfo
from artifactd.registry.storage import RegistryStorage

_ACCEPT = ", ".join(
    (mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST)
)
_MAX_LISTED_TAGS = 100_000


def describe_manifest(
    tag: str,
    data: bytes,
    media_type: str,
    digest: str,
    created_ms: Callable[[str], int],
) -> TagInfo:
    """A tag's facts from its manifest; ``created_ms(config digest)`` dates it.

    An index's size counts the index and its manifests' descriptors; an
    image's counts the manifest, config and layers.
    """
    try:
        parsed = parse_manifest_or_index(data, media_type)
    except OCIError as exc:
        raise RegistryError(f"tag {tag} has a bad manifest: {exc}") from exc
    if isinstance(parsed, Index):
        size = len(data) + sum(d.size for d in parsed.manifests)
        return TagInfo(tag, digest, "", size, media_type, 0, 0)
    size = len(data) + parsed.config.size + sum(d.size for d in parsed.layers)
    created = created_ms(parsed.config.digest)
    return TagInfo(
        tag, digest, parsed.config.digest, size, media_type, created, created
    )


def config_created_ms(config: bytes) -> int:
    """The image config's ``created`` time in epoch ms, or 0 when absent."""
    try:
        created = json.loads(config).get("created") or ""
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return 0
    return int(moment.timestamp() * 1000)


class StorageTags:
    """Tags of the embedded registry, read from its storage."""

    def __init__(self, storage: RegistryStorage) -> None:
        self._storage = storage

    def list_tags(self, repository: str) -> list[str]:
        return self._storage.list_tags(repository)

    def get_tag(self, repository: str, tag: str) -> TagInfo | None:
        record = self._storage.get_manifest(repository, tag)
        if record is None:
            return None
        return describe_manifest(
            tag, record.data, record.media_type, record.digest, self._created_ms
        )

    def delete_tag(self, repository: str, tag: str) -> bool:
        return self._storage.delete_tag(repository, tag)

    def _created_ms(self, config_digest: str) -> int:
        try:
            with self._storage.open_blob(config_digest) as handle:
                return config_created_ms(handle.read(1 << 20))
        except ArtifactdError:
            return 0


class DistributionTags:
    """Tags of a distribution-API registry at ``base_url`` (no auth, loopback)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def list_tags(self, repository: str) -> list[str]:
        """Tag names in the registry's order (lexical for Distribution)."""
        response = self._get(f"/v2/{quote(repository)}/tags/list?n={_MAX_LISTED_TAGS}")
        if response.status_code == 404:
            return []
        _raise_for_status(response, repository)
        return list(response.json().get("tags") or [])

    def get_tag(self, repository: str, tag: str) -> TagInfo | None:
        response = self._get(
            f"/v2/{quote(repository)}/manifests/{quote(tag)}",
            headers={"Accept": _ACCEPT},
        )
        if response.status_code == 404:
            return None
        _raise_for_status(response, repository)
        return self._describe(repository, tag, response)

    def delete_tag(self, repository: str, tag: str) -> bool:
        info = self.get_tag(repository, tag)
        if info is None:
            return False
        sharing = [
            t
            for t in self.list_tags(repository)
            if t != tag
            and (other := self.get_tag(repository, t)) is not None
            and other.digest == info.digest
        ]
        if sharing:
            raise RegistryError(
                f"tag {tag} shares its manifest with {', '.join(sorted(sharing))}; "
                "this registry can only delete them together"
            )
        path = f"/v2/{quote(repository)}/manifests/{info.digest}"
        try:
            response = self._client.delete(path)
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry unreachable: {exc}") from exc
        if response.status_code == 404:
            return False
        _raise_for_status(response, repository)
        return True

    def _describe(self, repository: str, tag: str, response: httpx.Response) -> TagInfo:
        media_type = response.headers.get("content-type", "").split(";")[0]
        digest = response.headers.get("docker-content-digest", "")
        return describe_manifest(
            tag,
            response.content,
            media_type,
            digest,
            lambda config: self._created_ms(repository, config),
        )

    def _created_ms(self, repository: str, config_digest: str) -> int:
        response = self._get(f"/v2/{quote(repository)}/blobs/{config_digest}")
        if response.status_code != 200:
            return 0
        return config_created_ms(response.content)

    def _get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            return self._client.get(path, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry unreachable: {exc}") from exc


def _raise_for_status(response: httpx.Response, repository: str) -> None:
    if response.status_code >= 400:
        raise RegistryError(
            f"registry answered {response.status_code} for {repository}: "
            f"{response.text[:200]}"
        )
