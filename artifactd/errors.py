"""The exceptions artifactd raises, rooted in one class.

    ArtifactdError
     +-- OCIError                  malformed OCI content (oci/)
     |    +-- DigestError           a digest string or a blob's bytes don't match
     |    +-- InvalidReferenceError an image reference or repository name is invalid
     |    +-- LayoutError           an OCI image layout is missing or malformed
     +-- FormatError               a layer could not be read or converted (formats/)
     |    +-- CorruptLayerError     compressed stream or tar archive is damaged
     |    +-- UnsafeLayerError      the layer escapes its root or decompresses too far
     |    +-- UnsupportedLayerError a well-formed layer artifactd cannot convert
     +-- ConversionCanceled        a conversion was stopped on request
     +-- RegistryError             talking to, or serving, a registry (registry/)
     |    +-- DistributionError     a distribution-spec error code and status
     |    |    +-- AuthenticationRequired  with the challenge to answer
     |    +-- StorageError          the registry's storage failed
     +-- ConfigError               invalid settings, reported at start-up
     +-- StoreError                a record is missing, taken or in the wrong state
     |    +-- RecordNotFoundError   the named record does not exist
     |    +-- RecordExistsError     the unique name or scope is already taken
     |    +-- InvalidStateError     the record's state forbids the transition
     +-- ApiError                  an OpenAPI request was refused (openapi/)

This module imports nothing of ours, so every layer of the package may use it.
Foreign exceptions (zlib, tarfile, httpx, SQLAlchemy) are translated into these
at the boundary and chained with ``from``.
"""


class ArtifactdError(Exception):
    """Root of every error artifactd raises on purpose."""


class OCIError(ArtifactdError):
    """OCI content (descriptor, manifest, index, config, layout) is malformed."""


class DigestError(OCIError):
    """A digest is malformed, or content does not match its digest or size."""


class InvalidReferenceError(OCIError):
    """An image reference or repository name breaks the distribution grammar."""


class LayoutError(OCIError):
    """An OCI image layout is missing, malformed or lacks the requested tag."""


class FormatError(ArtifactdError):
    """A layer could not be read or converted."""


class CorruptLayerError(FormatError):
    """The layer's compressed stream or tar archive is damaged."""


class UnsafeLayerError(FormatError):
    """The layer would escape its root, or decompresses past the size limit."""


class UnsupportedLayerError(FormatError):
    """The layer is well formed but uses something artifactd cannot convert."""


class ConversionCanceled(ArtifactdError):
    """A conversion was stopped on request before it finished."""


class RegistryError(ArtifactdError):
    """A registry request failed, or the embedded registry refused one."""


class ConfigError(ArtifactdError):
    """Settings are invalid; raised at start-up with a message naming the field."""


class StoreError(ArtifactdError):
    """A stored record is missing, already exists, or is in the wrong state."""


class RecordNotFoundError(StoreError):
    """The named record (rule, task, repository, ...) does not exist."""


class RecordExistsError(StoreError):
    """A record with the same unique name or scope already exists."""


class InvalidStateError(StoreError):
    """The record's state does not allow the requested transition."""


class ApiError(ArtifactdError):
    """The OpenAPI refused a request; carries the catalog code and HTTP status."""


class DistributionError(RegistryError):
    """An error in the terms of the OCI distribution spec: a code and a status.

    The embedded registry answers with these as JSON error bodies; the client
    raises them when a registry answers with one.
    """

    def __init__(
        self, code: str, message: str, status: int = 400, detail: object = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.detail = detail


class StorageError(RegistryError):
    """The registry's storage backend failed or holds inconsistent data."""


class AuthenticationRequired(DistributionError):
    """The registry wants (other) credentials; carries the challenge to send."""

    def __init__(self, code: str, message: str, status: int, challenge: str) -> None:
        super().__init__(code, message, status)
        self.challenge = challenge
