"""Descriptors, manifests, indexes and image configs.

Each type keeps the JSON object it was parsed from, so fields artifactd does
not model (vendor extensions, future spec fields) survive a round trip. The
typed attributes are views over that object; ``to_json`` writes it back in its
original key order, compactly.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from artifactd.errors import OCIError
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import sha256_digest, validate_digest


def canonical_json(obj: Any) -> bytes:
    """Compact JSON, keys in insertion order: the bytes artifactd writes."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _load_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OCIError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise OCIError(f"{what} is not a JSON object")
    return obj


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    #: The JSON object parsed, so fields not modelled here survive a round trip.
    raw: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``, as ``--platform linux/arm64/v8``."""
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise OCIError(f"invalid platform {text!r}; expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Platform:
        return cls(
            os=str(obj.get("os", "")),
            architecture=str(obj.get("architecture", "")),
            variant=str(obj.get("variant", "")),
            os_version=str(obj.get("os.version", "")),
            raw=dict(obj),
        )

    def to_json(self) -> dict[str, Any]:
        if self.raw is not None:
            return dict(self.raw)
        obj: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            obj["os.version"] = self.os_version
        if self.variant:
            obj["variant"] = self.variant
        return obj

    def matches(self, other: Platform) -> bool:
        """True when ``other`` is this platform; an empty variant matches any."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return not self.variant or self.variant == other.variant

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, dict):
            raise OCIError("descriptor is not a JSON object")
        try:
            digest = validate_digest(obj["digest"])
            size = obj["size"]
            media_type = obj.get("mediaType", "")
        except KeyError as exc:
            raise OCIError(f"descriptor lacks {exc.args[0]!r}") from exc
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise OCIError(f"descriptor {digest} has invalid size {size!r}")
        if not isinstance(media_type, str):
            raise OCIError(f"descriptor {digest} has invalid mediaType")
        annotations = obj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise OCIError(f"descriptor {digest} has invalid annotations")
        platform = obj.get("platform")
        known = {
            "mediaType",
            "digest",
            "size",
            "annotations",
            "platform",
            "artifactType",
        }
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in annotations.items()},
            platform=Platform.from_json(platform)
            if isinstance(platform, dict)
            else None,
            artifact_type=str(obj.get("artifactType", "")),
            extra={k: v for k, v in obj.items() if k not in known},
        )

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        if self.platform is not None:
            obj["platform"] = self.platform.to_json()
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        obj.update(self.extra)
        return obj

    @classmethod
    def for_bytes(cls, media_type: str, data: bytes, **kwargs: Any) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data), **kwargs)


def _descriptors(obj: dict[str, Any], key: str, what: str) -> list[Descriptor]:
    items = obj.get(key, [])
    if items is None:
        return []
    if not isinstance(items, list):
        raise OCIError(f"{what} {key!r} is not a list")
    return [Descriptor.from_json(item) for item in items]


@dataclass
class Manifest:
    """An OCI image manifest or a Docker schema 2 manifest."""

    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "") -> Manifest:
        obj = _load_object(data, "manifest")
        declared = obj.get("mediaType") or media_type or mt.OCI_MANIFEST
        if declared not in mt.MANIFEST_TYPES:
            raise OCIError(f"not an image manifest: mediaType {declared!r}")
        if obj.get("schemaVersion") != 2:
            raise OCIError("manifest schemaVersion is not 2")
        if "config" not in obj:
            raise OCIError("manifest lacks 'config'")
        subject = obj.get("subject")
        return cls(
            media_type=declared,
            config=Descriptor.from_json(obj["config"]),
            layers=_descriptors(obj, "layers", "manifest"),
            annotations=dict(obj.get("annotations") or {}),
            subject=Descriptor.from_json(subject) if subject else None,
            artifact_type=str(obj.get("artifactType", "")),
            raw=obj,
        )

    def to_json(self) -> dict[str, Any]:
        obj = copy.deepcopy(self.raw) if self.raw else {}
        obj["schemaVersion"] = 2
        obj["mediaType"] = self.media_type
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        obj["config"] = Descriptor.to_json(self.config)
        obj["layers"] = [Descriptor.to_json(d) for d in self.layers]
        if self.subject is not None:
            obj["subject"] = Descriptor.to_json(self.subject)
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        else:
            obj.pop("annotations", None)
        return _ordered(obj, ["schemaVersion", "mediaType", "artifactType", "config"])

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass
class Index:
    """An OCI image index or a Docker manifest list."""

    media_type: str
    manifests: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None
    artifact_type: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "") -> Index:
        obj = _load_object(data, "index")
        declared = obj.get("mediaType") or media_type or mt.OCI_INDEX
        if declared not in mt.INDEX_TYPES:
            raise OCIError(f"not an image index: mediaType {declared!r}")
        if obj.get("schemaVersion") != 2:
            raise OCIError("index schemaVersion is not 2")
        subject = obj.get("subject")
        return cls(
            media_type=declared,
            manifests=_descriptors(obj, "manifests", "index"),
            annotations=dict(obj.get("annotations") or {}),
            subject=Descriptor.from_json(subject) if subject else None,
            artifact_type=str(obj.get("artifactType", "")),
            raw=obj,
        )

    def to_json(self) -> dict[str, Any]:
        obj = copy.deepcopy(self.raw) if self.raw else {}
        obj["schemaVersion"] = 2
        obj["mediaType"] = self.media_type
        if self.artifact_type:
            obj["artifactType"] = self.artifact_type
        obj["manifests"] = [Descriptor.to_json(d) for d in self.manifests]
        if self.subject is not None:
            obj["subject"] = Descriptor.to_json(self.subject)
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        else:
            obj.pop("annotations", None)
        return _ordered(obj, ["schemaVersion", "mediaType", "artifactType"])

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass
class ImageConfig:
    """An image configuration; only ``rootfs`` and ``history`` are modelled."""

    raw: dict[str, Any]

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        obj = _load_object(data, "image config")
        rootfs = obj.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise OCIError("image config lacks rootfs.diff_ids")
        for diff_id in rootfs["diff_ids"]:
            validate_digest(diff_id)
        return cls(obj)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.raw["rootfs"]["diff_ids"])

    @diff_ids.setter
    def diff_ids(self, value: list[str]) -> None:
        self.raw["rootfs"]["diff_ids"] = list(value)

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.raw.get("history") or [])

    @property
    def platform(self) -> Platform:
        return Platform(
            os=str(self.raw.get("os", "")),
            architecture=str(self.raw.get("architecture", "")),
            variant=str(self.raw.get("variant", "")),
        )

    def to_bytes(self) -> bytes:
        return canonical_json(self.raw)


def parse_manifest_or_index(data: bytes, media_type: str = "") -> Manifest | Index:
    """Parse either kind, trusting the document's own mediaType over the hint."""
    obj = _load_object(data, "manifest")
    declared = obj.get("mediaType") or media_type
    if not declared:
        declared = mt.OCI_INDEX if "manifests" in obj else mt.OCI_MANIFEST
    if declared in mt.INDEX_TYPES:
        return Index.from_bytes(data, declared)
    if declared in mt.MANIFEST_TYPES:
        return Manifest.from_bytes(data, declared)
    raise OCIError(f"unsupported manifest media type {declared!r}")


def _ordered(obj: dict[str, Any], first: list[str]) -> dict[str, Any]:
    out = {k: obj[k] for k in first if k in obj}
    out.update((k, v) for k, v in obj.items() if k not in out)
    return out
