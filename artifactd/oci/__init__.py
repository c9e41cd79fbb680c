"""The OCI data model: digests, descriptors, manifests, indexes, configs,
references and image layouts. Pure: no logging, no network, no database."""

from artifactd.oci.digest import (
    Digester,
    VerifyingReader,
    sha256_digest,
    validate_digest,
)
from artifactd.oci.layout import Layout, LayoutWriter, init_layout
from artifactd.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    canonical_json,
    parse_manifest_or_index,
)
from artifactd.oci.reference import (
    LayoutReference,
    RegistryReference,
    parse_layout_reference,
    parse_reference,
    parse_registry_reference,
    validate_repository_name,
    validate_tag,
)

__all__ = [
    "Descriptor",
    "Digester",
    "ImageConfig",
    "Index",
    "Layout",
    "LayoutReference",
    "LayoutWriter",
    "Manifest",
    "Platform",
    "RegistryReference",
    "VerifyingReader",
    "canonical_json",
    "init_layout",
    "parse_layout_reference",
    "parse_manifest_or_index",
    "parse_reference",
    "parse_registry_reference",
    "sha256_digest",
    "validate_digest",
    "validate_repository_name",
    "validate_tag",
]
