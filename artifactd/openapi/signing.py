"""Verifying the two signature schemes the official SDKs use.

* RPC v1 (``SignatureVersion=1.0``, HMAC-SHA1): every decoded query and form
  parameter except ``Signature`` is percent-encoded (RFC 3986), sorted, joined,
  encoded again and prefixed with ``METHOD&%2F&``; the key is ``secret + "&"``
  and the Base64 digest travels as the ``Signature`` parameter.
* ACS3-HMAC-SHA256 (V3): the ``Authorization`` header names the access key,
  the signed headers and a hex signature over the canonical request (method,
  path, sorted query, the listed headers, the SHA-256 of the body).

Both also carry a timestamp (15 minutes of skew allowed either way) and a
nonce that may be used once per access key inside that window. A request is
checked in a fixed order, and the nonce is consumed only after its signature
verified, so a refused request never burns a client's nonce.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import calendar
import functools
import hashlib
import heapq
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from artifactd.openapi.errors import GatewayError, missing_parameter
from artifactd.openapi.protocol import RpcRequest

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
TIMESTAMP_WINDOW_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED_RE = re.compile(r"[A-Za-z0-9_.~-]*")
_TIMESTAMP_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")

# Headers a V3 request must sign when present: without them a signed request
# could be replayed against another host, action or time.
_ACS3_MUST_SIGN = ("host",)
_V1_REQUIRED = (
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)
_ACS3_REQUIRED = (
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)


def pct(text: str) -> str:
    """RFC 3986 encoding of UTF-8 text: only ``A-Z a-z 0-9 - _ . ~`` stay literal."""
    # Most names and values need no escaping; checking is cheaper than quoting.
    if _UNRESERVED_RE.fullmatch(text):
        return text
    if text.isascii():
        return _RESERVED_RE.sub(_escape, text)
    return quote(text, safe="")


_RESERVED_RE = re.compile(r"[^A-Za-z0-9_.~-]")


def _escape(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


#: Encoded parameter names: a handful recur in every request.
_NAMES: dict[str, str] = {}


def _pct_name(name: str) -> str:
    encoded = _NAMES.get(name)
    if encoded is None:
        encoded = pct(name)
        if len(_NAMES) < 4096:
            _NAMES[name] = encoded
    return encoded


def canonical_query(params: dict[str, str], skip: str | None = None) -> str:
    """``name=value`` pairs, encoded with :func:`pct`, sorted by encoded name."""
    pairs = sorted((_pct_name(k), pct(v)) for k, v in params.items() if k != skip)
    return "&".join([f"{k}={v}" for k, v in pairs])


# A query string already in canonical form holds ``name=value`` pairs of
# unreserved characters and upper-case escapes of the ASCII characters that
# must be escaped (never of an unreserved one). Decoding such a string and
# encoding it again with :func:`pct` gives it back unchanged.
_WIRE_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~%-"
_WIRE_SEPARATORS = b"=&"
# An escape that canonical form never holds: of an unreserved character, in
# lower-case hex, of a byte over 0x7F, or no escape at all.
_NON_CANONICAL_ESCAPE_RE = re.compile(
    r"%(?:(?![0-7][0-9A-F])|2[DE]|3[0-9]|[46][1-9A-F]|[57][0-9A]|5F|7E)"
)


def canonical_wire_query(raw: str, decoded: dict[str, str]) -> str | None:
    """The canonical query of a request whose wire query is already canonical,
    without ``Signature``; None when it is not (then encode ``decoded``).

    The SDKs send their parameters encoded exactly as they sign them, so the
    usual request skips encoding every decoded value again to sign it. Every
    check runs in C over the whole string: this is on every request's path.
    """
    wire = raw.encode()
    # Only wire characters; then the separators alone must read "=&=&...=":
    # one "=" in each pair, none empty.
    if wire.translate(None, _WIRE_BYTES + _WIRE_SEPARATORS):
        return None
    pairs = raw.replace("=", "\0").split("&")
    if len(pairs) != len(decoded):  # an empty pair, or a name given twice
        return None
    if wire.translate(None, _WIRE_BYTES) != b"=&" * (len(pairs) - 1) + b"=":
        return None
    if "%" in raw and _NON_CANONICAL_ESCAPE_RE.search(raw):
        return None
    # "\0" sorts before every character of a name: this orders by name.
    pairs.sort()
    at = bisect.bisect_left(pairs, "Signature\0")
    if at < len(pairs) and pairs[at].startswith("Signature\0"):
        del pairs[at]
    return "&".join(pairs).replace("\0", "=")


def rpc_v1_string_to_sign(
    method: str, params: dict[str, str], query: str | None = None
) -> str:
    """The v1 string to sign; ``query`` is the canonical query, if known."""
    if query is None:
        query = canonical_query(params, skip="Signature")
    # The canonical query holds only unreserved characters, "%", "=" and "&",
    # so encoding it a second time means escaping just those three.
    encoded = query.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    return f"{method.upper()}&%2F&{encoded}"


def rpc_v1_signature(string_to_sign: str, secret: str) -> str:
    key = (secret + "&").encode()
    digest = hmac.digest(key, string_to_sign.encode(), "sha1")
    return base64.b64encode(digest).decode("ascii")


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha1_pads(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA1's inner and outer hashes with the key absorbed (RFC 2104):
    copy both, feed the message to the inner one and its digest to the outer
    one, and the outer digest is the HMAC."""
    if len(key) > 64:
        key = hashlib.sha1(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha1(key.translate(_IPAD)), hashlib.sha1(key.translate(_OPAD))


@dataclass(frozen=True)
class Acs3Authorization:
    """The parts of an ``Authorization: ACS3-HMAC-SHA256 ...`` header."""

    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_acs3_authorization(value: str) -> Acs3Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, _, field_value = item.strip().partition("=")
        fields[name] = field_value
    credential = fields.get("Credential", "")
    signature = fields.get("Signature", "")
    signed = tuple(h for h in fields.get("SignedHeaders", "").split(";") if h)
    if not credential or not signature or not signed:
        raise GatewayError(
            "IncompleteSignature",
            detail="Authorization needs Credential, SignedHeaders and Signature.",
        )
    return Acs3Authorization(algorithm, credential, signed, signature)


def acs3_canonical_request(
    request: RpcRequest, signed_headers: tuple[str, ...], payload_hash: str
) -> str:
    headers = "".join(
        f"{name}:{request.headers.get(name, '').strip()}\n" for name in signed_headers
    )
    return "\n".join(
        (
            request.method,
            quote(request.path or "/", safe="/"),
            canonical_query(request.query),
            headers,
            ";".join(signed_headers),
            payload_hash,
        )
    )


def acs3_string_to_sign(canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ACS3_ALGORITHM}\n{digest}"


def acs3_signature(string_to_sign: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256)
    return mac.hexdigest()


@functools.lru_cache(maxsize=1024)
def parse_timestamp(value: str) -> float:
    """Seconds since the epoch of ``YYYY-MM-DDThh:mm:ssZ`` (UTC), strictly.

    Cached: requests signed within the same second carry the same text.
    """
    match = _TIMESTAMP_RE.fullmatch(value)
    if match is None:
        raise GatewayError("InvalidTimeStamp.Format")
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60):
        raise GatewayError("InvalidTimeStamp.Format")
    if second > 60:
        raise GatewayError("InvalidTimeStamp.Format")
    return float(calendar.timegm((year, month, day, hour, minute, second)))


class NonceCache:
    """Remembers each (access key, nonce) pair for the timestamp window.

    A nonce is kept until its request's own timestamp leaves the window, so a
    request dated in the future cannot be replayed once the server forgets it.
    Thread-safe. Memory is bounded by ``max_entries``: when that many nonces
    are live, new requests are refused with ``Throttling.User`` rather than
    forgetting a nonce early, which would let a replay through.

    Nonces are filed by the whole second they expire in (rounded up, so none
    goes early). A busy server holds millions, so they are plain strings in
    dicts of strings, which the garbage collector does not track: with a set
    or lists, every full collection would visit each nonce (280 ms for three
    million), stalling every request in flight.
    """

    def __init__(
        self,
        window_seconds: float = TIMESTAMP_WINDOW_SECONDS,
        max_entries: int = 4_000_000,
        journaled: bool = False,
    ) -> None:
        self._window = window_seconds
        self._max_entries = max_entries
        self._seen: dict[str, None] = {}
        self._buckets: dict[int, dict[str, None]] = {}
        self._seconds: list[int] = []  # a heap of the buckets' seconds
        self._lock = threading.Lock()
        # With a journal, claims since its last drain(): keys and expiries.
        self._journaled = journaled
        self._new_keys: list[str] = []
        self._new_expiries: list[int] = []

    def __len__(self) -> int:
        return len(self._seen)

    def claim(
        self, access_key_id: str, nonce: str, now: float, signed_at: float
    ) -> None:
        """Record the nonce, or raise ``SignatureNonceUsed`` if it was seen."""
        key = f"{access_key_id}\0{nonce}"
        with self._lock:
            seconds = self._seconds
            if seconds and seconds[0] <= now:
                self._expire(now)
            if key in self._seen:
                raise GatewayError("SignatureNonceUsed")
            if len(self._seen) >= self._max_entries:
                error = GatewayError("Throttling.User")
                error.retry_after = max(1.0, seconds[0] - now)
                raise error
            self._seen[key] = None
            expires = int(max(now, signed_at) + self._window) + 1
            self._file(key, expires)
            if self._journaled:
                self._new_keys.append(key)
                self._new_expiries.append(expires)

    def _file(self, key: str, expires: int) -> None:
        bucket = self._buckets.get(expires)
        if bucket is None:
            bucket = self._buckets[expires] = {}
            heapq.heappush(self._seconds, expires)
        bucket[key] = None

    def drain(self) -> list[tuple[str, int]]:
        """The claims made since the last drain, as ``(key, expires_at)``;
        a key is ``access_key_id + "\\0" + nonce``."""
        with self._lock:
            keys, expiries = self._new_keys, self._new_expiries
            self._new_keys, self._new_expiries = [], []
        return list(zip(keys, expiries, strict=True))

    def restore(self, entries: Iterable[tuple[str, int]]) -> None:
        """Take back claims a journal kept (``drain``'s pairs): each is
        refused again until its expiry, the latest one if it came twice."""
        latest: dict[str, int] = {}
        for key, expires in entries:
            if expires > latest.get(key, 0):
                latest[key] = expires
        with self._lock:
            for key, expires in latest.items():
                if key not in self._seen:
                    self._seen[key] = None
                    self._file(key, expires)

    def _expire(self, now: float) -> None:
        seconds, seen = self._seconds, self._seen
        while seconds and seconds[0] <= now:
            for key in self._buckets.pop(heapq.heappop(seconds)):
                seen.pop(key, None)


SecretLookup = Callable[[str], "str | None"]


class SignatureVerifier:
    """Authenticates requests against the access keys ``lookup`` knows.

    ``lookup(access_key_id)`` returns the secret, or None for an unknown or
    disabled key. The order of checks: required fields, timestamp format and
    skew, access key, signature, and only then the nonce.
    """

    def __init__(
        self,
        lookup: SecretLookup,
        nonces: NonceCache | None = None,
        clock: Callable[[], float] = time.time,
        window_seconds: float = TIMESTAMP_WINDOW_SECONDS,
    ) -> None:
        self._lookup = lookup
        self._nonces = nonces if nonces is not None else NonceCache(window_seconds)
        self._clock = clock
        self._window = window_seconds
        self._v1_pads: dict[str, tuple[Any, Any]] = {}

    def verify(self, request: RpcRequest) -> str:
        """Return the authenticated access key id, or raise a GatewayError."""
        if request.is_acs3:
            return self._verify_acs3(request)
        return self._verify_v1(request)

    def _verify_v1(self, request: RpcRequest) -> str:
        params = request.params
        if "Signature" not in params:
            raise GatewayError("MissingSignature")
        for name in _V1_REQUIRED:
            if not params.get(name):
                raise missing_parameter(name)
        if params["SignatureMethod"] != "HMAC-SHA1":
            raise GatewayError(
                "IncompleteSignature", detail="SignatureMethod must be HMAC-SHA1."
            )
        if params["SignatureVersion"] != "1.0":
            raise GatewayError(
                "IncompleteSignature", detail="SignatureVersion must be 1.0."
            )
        now, signed_at = self._check_time(params["Timestamp"])
        access_key_id = params["AccessKeyId"]
        secret = self._secret(access_key_id)
        query = None
        if not request.form:
            query = canonical_wire_query(request.raw_query, params)
        string_to_sign = rpc_v1_string_to_sign(request.method, params, query)
        expected = self._v1_signature(string_to_sign, secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise GatewayError("SignatureDoesNotMatch", string_to_sign=string_to_sign)
        self._nonces.claim(access_key_id, params["SignatureNonce"], now, signed_at)
        return access_key_id

    def _v1_signature(self, string_to_sign: str, secret: str) -> str:
        """:func:`rpc_v1_signature`, from the HMAC's two keyed hashes kept per
        secret: two copies in C instead of keying a new HMAC per request."""
        pads = self._v1_pads.get(secret)
        if pads is None:
            if len(self._v1_pads) >= 1024:
                self._v1_pads.clear()
            pads = self._v1_pads[secret] = hmac_sha1_pads((secret + "&").encode())
        inner, outer = pads[0].copy(), pads[1].copy()
        inner.update(string_to_sign.encode())
        outer.update(inner.digest())
        return binascii.b2a_base64(outer.digest(), newline=False).decode("ascii")

    def _verify_acs3(self, request: RpcRequest) -> str:
        headers = request.headers
        auth = parse_acs3_authorization(headers["authorization"])
        if auth.algorithm != ACS3_ALGORITHM:
            raise GatewayError(
                "IncompleteSignature", detail=f"Use the {ACS3_ALGORITHM} algorithm."
            )
        for name in _ACS3_REQUIRED:
            if not headers.get(name):
                raise missing_parameter(name)
        self._check_signed_headers(headers, auth.signed_headers)
        payload_hash = hashlib.sha256(request.body).hexdigest()
        if headers["x-acs-content-sha256"] != payload_hash:
            raise GatewayError(
                "IncompleteSignature",
                detail="x-acs-content-sha256 does not match the body.",
            )
        now, signed_at = self._check_time(headers["x-acs-date"])
        secret = self._secret(auth.access_key_id)
        canonical = acs3_canonical_request(request, auth.signed_headers, payload_hash)
        string_to_sign = acs3_string_to_sign(canonical)
        expected = acs3_signature(string_to_sign, secret)
        if not hmac.compare_digest(expected, auth.signature.lower()):
            raise GatewayError("SignatureDoesNotMatch", string_to_sign=string_to_sign)
        nonce = headers["x-acs-signature-nonce"]
        self._nonces.claim(auth.access_key_id, nonce, now, signed_at)
        return auth.access_key_id

    @staticmethod
    def _check_signed_headers(headers: dict[str, str], signed: tuple[str, ...]) -> None:
        present = [h for h in headers if h.startswith("x-acs-") or h in _ACS3_MUST_SIGN]
        unsigned = sorted(h for h in present if h not in signed)
        if unsigned:
            raise GatewayError(
                "IncompleteSignature",
                detail=f"Headers present but not signed: {', '.join(unsigned)}.",
            )

    def _check_time(self, value: str) -> tuple[float, float]:
        """Return (now, signing time) once the skew is within the window."""
        now = self._clock()
        signed_at = parse_timestamp(value)
        if abs(now - signed_at) > self._window:
            raise GatewayError("InvalidTimeStamp.Expired")
        return now, signed_at

    def _secret(self, access_key_id: str) -> str:
        secret = self._lookup(access_key_id)
        if secret is None:
            raise GatewayError("InvalidAccessKeyId.NotFound")
        return secret
