"""Reading an RPC request off the wire: method, query, form body, headers.

The SDKs put every business parameter in the query string, except the core
SDK's ``CommonRequest`` with ``add_body_params``, which sends an
``application/x-www-form-urlencoded`` body. Both are decoded the same way:
``+`` is a space, percent escapes are UTF-8, blank values are kept (the core
SDK signs ``SignatureType=``). The decoded values are what signatures are
computed over, never the wire text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from artifactd.openapi.errors import GatewayError

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# A form body carries a handful of short parameters; anything larger is refused
# before it is read into memory.
MAX_BODY_BYTES = 1 << 20


def decode_params(raw: str) -> dict[str, str]:
    """Decode a query string or urlencoded form, keeping blank values.

    Invalid UTF-8 escapes become U+FFFD rather than an error: such a request
    then fails its signature check with a clear code instead of crashing.
    When a name repeats, the last value wins, for signing and use alike.
    """
    params: dict[str, str] = {}
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        # Most SDK values need no unescaping; unquote only those that do.
        if "%" in pair or "+" in pair:
            if "%" in name or "+" in name:
                name = _unquote(name)
            if "%" in value or "+" in value:
                value = _unquote(value)
        elif not pair:
            continue
        params[name] = value
    return params


#: ``%XX`` escapes of ASCII characters, in every mix of hex digit cases.
_ASCII_ESCAPES = {
    spelling: chr(code)
    for code in range(128)
    for hex_ in [f"{code:02x}"]
    for spelling in {
        hex_,
        hex_.upper(),
        hex_[0].upper() + hex_[1],
        hex_[0] + hex_[1].upper(),
    }
}


def _unquote(text: str) -> str:
    """``unquote_plus(text, errors="replace")``, faster for ASCII escapes
    (timestamps and signatures have a few); anything else goes to it."""
    parts = text.replace("+", " ").split("%")
    out = [parts[0]]
    for part in parts[1:]:
        char = _ASCII_ESCAPES.get(part[:2])
        if char is None:
            return unquote_plus(text, errors="replace")
        out.append(char)
        out.append(part[2:])
    return "".join(out)


@dataclass(slots=True)
class RpcRequest:
    """One decoded API request, as the signature checks and actions see it."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes
    #: The query string as sent, before decoding.
    raw_query: str = ""
    #: Query and form parameters merged; the form wins on a clash.
    params: dict[str, str] = field(init=False)
    #: Signed with ACS3-HMAC-SHA256 (an ``Authorization: ACS3-...`` header).
    is_acs3: bool = field(init=False)
    action: str | None = field(init=False)
    version: str | None = field(init=False)
    #: ``Format=XML`` in any case; anything else (absent, json, None) is JSON.
    wants_xml: bool = field(init=False)

    def __post_init__(self) -> None:
        # Worked out once: each is read on every request's path, some twice.
        params = {**self.query, **self.form} if self.form else self.query
        headers = self.headers
        self.params = params
        self.is_acs3 = headers.get("authorization", "").startswith("ACS3-")
        self.action = params.get("Action") or headers.get("x-acs-action")
        self.version = params.get("Version") or headers.get("x-acs-version")
        self.wants_xml = params.get("Format", "").upper() == "XML"


def collect_headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-cased header names; repeated headers are joined with a comma."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def build_request(
    method: str,
    path: str,
    query_string: bytes,
    raw_headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> RpcRequest:
    """Decode one request; the form body counts only with the form content type."""
    if len(body) > MAX_BODY_BYTES:
        raise GatewayError("RequestEntityTooLarge", detail=str(MAX_BODY_BYTES))
    headers = collect_headers(raw_headers)
    raw_query = query_string.decode("utf-8", "replace")
    query = decode_params(raw_query)
    form: dict[str, str] = {}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type == FORM_CONTENT_TYPE:
        form = decode_params(body.decode("utf-8", "replace"))
    return RpcRequest(method.upper(), path, query, form, headers, body, raw_query)
