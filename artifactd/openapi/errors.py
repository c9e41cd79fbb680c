"""The one catalog of errors the OpenAPI reports.

Two kinds, as ACR EE reports them:

* Gateway errors (authentication, missing or malformed parameters, unknown
  action, throttling) are HTTP 4xx/5xx answers with the body
  ``{RequestId, HostId, Code, Message, Recommend}``. Every SDK raises its
  exception class for them and exposes ``Code``.
* Business failures (a namespace that does not exist, a name already taken, a
  task that can no longer be cancelled) are *in-band*: HTTP 200 with
  ``IsSuccess: false`` and an upper-case resource code. No SDK raises for them;
  callers read ``Code`` and ``IsSuccess`` from the result.

Handlers raise :class:`GatewayError` or :class:`BusinessError`; the app turns
both into responses and nothing else decides a status code or a code string.
"""

from __future__ import annotations

from dataclasses import dataclass

from artifactd.errors import ApiError


@dataclass(frozen=True)
class GatewayCode:
    """One gateway error: its code, HTTP status and message template."""

    code: str
    status: int
    template: str


def _catalog(*codes: GatewayCode) -> dict[str, GatewayCode]:
    return {c.code: c for c in codes}


# The SignatureDoesNotMatch text must keep exactly one ":" before the server's
# string-to-sign: the core SDK splits the message on ":" and crashes without it.
GATEWAY_CODES = _catalog(
    GatewayCode(
        "MissingParameter",
        400,
        'The input parameter "{name}" that is mandatory for processing this '
        "request is not supplied.",
    ),
    GatewayCode("InvalidParameter", 400, "{detail}"),
    GatewayCode("MissingSignature", 400, "Signature is mandatory for this action."),
    GatewayCode(
        "IncompleteSignature",
        400,
        "The request signature does not conform to Aliyun standards. {detail}",
    ),
    GatewayCode(
        "SignatureDoesNotMatch",
        400,
        "Specified signature is not matched with our calculation. "
        "server string to sign is:{string_to_sign}",
    ),
    GatewayCode(
        "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."
    ),
    GatewayCode(
        "InvalidTimeStamp.Format",
        400,
        "Specified time stamp or date value is not well formatted.",
    ),
    GatewayCode(
        "InvalidTimeStamp.Expired",
        400,
        "Specified time stamp or date value is expired.",
    ),
    GatewayCode(
        "SignatureNonceUsed", 400, "Specified signature nonce was used already."
    ),
    GatewayCode("InvalidVersion", 400, "Specified parameter Version is not valid."),
    GatewayCode(
        "InvalidAction.NotFound",
        404,
        "Specified api is not found, please check your url and method.",
    ),
    GatewayCode(
        "UnsupportedHTTPMethod",
        405,
        "Specified HTTP method {detail} is not supported.",
    ),
    GatewayCode("Throttling.User", 400, "Request was denied due to user flow control."),
    GatewayCode(
        "RequestEntityTooLarge",
        413,
        "The request body is larger than {detail} bytes.",
    ),
    GatewayCode(
        "InternalError",
        500,
        "The request processing has failed due to some unknown error.",
    ),
    GatewayCode(
        "ServiceUnavailable",
        503,
        "The request has failed due to a temporary failure of the server.",
    ),
)


class GatewayError(ApiError):
    """A request refused before or instead of running its action (HTTP 4xx/5xx)."""

    def __init__(self, code: str, **fields: str) -> None:
        entry = GATEWAY_CODES[code]
        self.code = code
        self.status = entry.status
        self.message = entry.template.format(**fields)
        # Seconds to wait before retrying; sent as x-acs-retry-after (ms).
        self.retry_after: float | None = None
        super().__init__(f"{code}: {self.message}")


def missing_parameter(name: str) -> GatewayError:
    return GatewayError("MissingParameter", name=name)


def invalid_parameter(name: str, problem: str) -> GatewayError:
    """An InvalidParameter error whose message starts with the parameter's name."""
    return GatewayError("InvalidParameter", detail=f'The parameter "{name}" {problem}')


@dataclass(frozen=True)
class BusinessCode:
    """One in-band failure code and its default message."""

    code: str
    message: str


BUSINESS_CODES = {
    c.code: c
    for c in (
        BusinessCode("INSTANCE_NOT_EXIST", "The instance does not exist."),
        BusinessCode("NAMESPACE_NOT_EXIST", "The namespace does not exist."),
        BusinessCode("NAMESPACE_ALREADY_EXIST", "The namespace already exists."),
        BusinessCode(
            "NAMESPACE_NOT_EMPTY",
            "The namespace still holds repositories; delete them first.",
        ),
        BusinessCode("REPO_NOT_EXIST", "The repository does not exist."),
        BusinessCode("REPO_ALREADY_EXIST", "The repository already exists."),
        BusinessCode("TAG_NOT_EXIST", "The tag does not exist."),
        BusinessCode(
            "TAG_IMMUTABLE", "The repository's tags are immutable; tags are kept."
        ),
        BusinessCode(
            "TAG_NOT_DELETABLE", "The registry cannot delete this tag on its own."
        ),
        BusinessCode("ARTIFACT_BUILD_RULE_NOT_EXIST", "The build rule does not exist."),
        BusinessCode(
            "ARTIFACT_BUILD_RULE_ALREADY_EXIST",
            "A build rule already exists for this scope and artifact type.",
        ),
        BusinessCode("ARTIFACT_BUILD_TASK_NOT_EXIST", "The build task does not exist."),
        BusinessCode(
            "ARTIFACT_BUILD_TASK_STATUS_INVALID",
            "The build task's status does not allow this operation.",
        ),
    )
}


class BusinessError(ApiError):
    """An action that ran but failed on the resource: reported in-band (HTTP 200)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or BUSINESS_CODES[code].message
        super().__init__(f"{code}: {self.message}")
