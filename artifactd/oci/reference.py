"""Repository names, tags and image references, by the distribution grammar.

Two reference forms are understood:

- ``oci:DIR[:TAG]`` or ``oci:DIR@DIGEST``, an OCI image layout on disk;
- ``docker://HOST[:PORT]/REPO[:TAG][@DIGEST]``, an image in a registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from artifactd.errors import InvalidReferenceError
from artifactd.oci.digest import validate_digest

#: One path component of a repository name (distribution spec).
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
MAX_NAME_LENGTH = 255


def validate_repository_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise InvalidReferenceError(f"invalid repository name {name!r}")
    return name


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise InvalidReferenceError(f"invalid tag {tag!r}")
    return tag


@dataclass(frozen=True)
class LayoutReference:
    """An image in an OCI image layout directory."""

    path: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        if self.digest:
            return f"oci:{self.path}@{self.digest}"
        return f"oci:{self.path}:{self.tag}" if self.tag else f"oci:{self.path}"


@dataclass(frozen=True)
class RegistryReference:
    """An image in a registry: ``host/repository`` plus a tag and/or digest."""

    host: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in a request: the digest if pinned."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> RegistryReference:
        return RegistryReference(self.host, self.repository, validate_tag(tag), "")

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_layout_reference(text: str) -> LayoutReference:
    """Parse ``oci:DIR[:TAG]`` or ``oci:DIR@DIGEST``."""
    if not text.startswith("oci:"):
        raise InvalidReferenceError(f"not an OCI layout reference: {text!r}")
    rest = text[4:]
    if "@" in rest:
        path, digest = rest.rsplit("@", 1)
        return LayoutReference(_nonempty(path, text), digest=validate_digest(digest))
    path, sep, tag = rest.rpartition(":")
    # A colon belongs to the path when what follows it is not a valid tag
    # (``oci:/tmp/x`` has none; ``oci:C:/x`` style paths keep theirs).
    if not sep or "/" in tag or not TAG_RE.match(tag):
        return LayoutReference(_nonempty(rest, text))
    return LayoutReference(_nonempty(path, text), tag=tag)


def parse_registry_reference(text: str) -> RegistryReference:
    """Parse ``docker://HOST/REPO[:TAG][@DIGEST]`` (the scheme is optional)."""
    rest = text.removeprefix("docker://")
    digest = ""
    if "@" in rest:
        rest, digest = rest.rsplit("@", 1)
        validate_digest(digest)
    host, slash, path = rest.partition("/")
    if not slash or not path or not _HOST_RE.match(host):
        raise InvalidReferenceError(
            f"invalid registry reference {text!r}; expected HOST[:PORT]/REPO[:TAG]"
        )
    tag = ""
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, validate_tag(maybe_tag)
    validate_repository_name(path)
    if not tag and not digest:
        tag = "latest"
    return RegistryReference(host, path, tag, digest)


def parse_reference(text: str) -> LayoutReference | RegistryReference:
    if text.startswith("oci:"):
        return parse_layout_reference(text)
    if text.startswith("docker://"):
        return parse_registry_reference(text)
    raise InvalidReferenceError(
        f"unknown reference {text!r}; use oci:DIR[:TAG] or docker://HOST/REPO[:TAG]"
    )


def _nonempty(path: str, text: str) -> str:
    if not path:
        raise InvalidReferenceError(f"reference {text!r} names no directory")
    return path
