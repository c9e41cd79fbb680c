"""Who may pull and push: HTTP basic, and Docker's bearer token flow.

A client without credentials gets ``401`` with a challenge. In ``token``
mode (the default) the challenge is ``Bearer realm=...,service=...,scope=...``;
the client then asks the token endpoint, with its access key as basic
credentials, for a short-lived token carrying the scopes it needs. Basic
credentials sent straight to ``/v2/`` are accepted in every mode.

Tokens are ``v1.<payload>.<signature>``: base64url JSON claims signed with
HMAC-SHA256 under a key only this service knows. They are checked without
a database read, which keeps the per-request cost of a pull or push flat.

The registry knows nothing of the store: it asks a :class:`Credentials`
whether an access key is valid and a :class:`RepositoryPolicy` whether a
repository is public or may be created by a push.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from artifactd.errors import AuthenticationRequired, DistributionError

log = logging.getLogger(__name__)

PULL = "pull"
PUSH = "push"
DELETE = "delete"
ALL_ACTIONS = frozenset({PULL, PUSH, DELETE})
AUTH_MODES = ("token", "basic", "none")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; ``name`` is the access key id."""

    name: str


class Credentials(Protocol):
    def verify(self, user: str, password: str) -> Principal | None:
        """The principal these credentials belong to, or None if invalid."""
        ...


class RepositoryPolicy(Protocol):
    def is_public(self, name: str) -> bool:
        """True when anyone, even anonymous, may pull ``name``."""
        ...

    def on_push_new_repository(self, name: str) -> bool:
        """Called before the first write to ``name``; False refuses the push."""
        ...


class StaticCredentials:
    """Fixed user/password pairs, for a stand-alone registry and tests."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def verify(self, user: str, password: str) -> Principal | None:
        expected = self._users.get(user)
        if expected is None or not hmac.compare_digest(expected, password):
            return None
        return Principal(user)


@dataclass
class OpenPolicy:
    """Repositories named in ``public`` are public; pushes may create any."""

    public: set[str] = field(default_factory=set)
    auto_create: bool = True

    def is_public(self, name: str) -> bool:
        return name in self.public

    def on_push_new_repository(self, name: str) -> bool:
        return self.auto_create


@dataclass(frozen=True)
class Scope:
    """One entry of a token's ``access`` list, as Docker's token spec shapes it."""

    type: str
    name: str
    actions: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``repository:NAME:pull,push`` (or ``registry:catalog:*``)."""
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            raise DistributionError("UNSUPPORTED", f"invalid scope {text!r}", 400)
        return cls(kind, name, frozenset(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


@dataclass(frozen=True)
class Token:
    subject: str
    access: tuple[Scope, ...]
    expires_at: float

    def allows(self, kind: str, name: str, action: str) -> bool:
        return any(
            s.type == kind
            and s.name == name
            and (action in s.actions or "*" in s.actions)
            for s in self.access
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Issues and verifies HMAC-signed bearer tokens valid for ``ttl`` seconds."""

    def __init__(self, key: bytes, service: str, ttl: int = 300) -> None:
        if len(key) < 16:
            raise ValueError("token signing key must be at least 16 bytes")
        self._key = key
        self.service = service
        self.ttl = ttl

    def issue(self, subject: str, access: Iterable[Scope]) -> tuple[str, int, float]:
        """A token, its lifetime in seconds, and when it was issued."""
        now = time.time()
        claims = {
            "iss": self.service,
            "aud": self.service,
            "sub": subject,
            "iat": int(now),
            "exp": int(now) + self.ttl,
            "jti": secrets.token_hex(8),
            "access": [s.to_json() for s in access],
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"v1.{payload}.{self._sign(payload)}", self.ttl, now

    def verify(self, token: str) -> Token | None:
        """The token's grants, or None if it is forged, malformed or expired."""
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != "v1" or not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            claims = json.loads(_unb64(payload))
            access = tuple(
                Scope(a["type"], a["name"], frozenset(a["actions"]))
                for a in claims["access"]
            )
            expires_at = float(claims["exp"])
            subject = str(claims["sub"])
        except (ValueError, KeyError, TypeError):
            return None
        if claims.get("aud") != self.service or expires_at < time.time():
            return None
        return Token(subject, access, expires_at)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


class Authorizer:
    """Decides every registry request and every token request.

    An authenticated access key may do anything (access keys are the
    service's administrators); anonymous callers may pull public
    repositories only. Valid basic credentials are remembered for
    ``cache_seconds`` so a push of many blobs verifies them once.
    """

    def __init__(
        self,
        credentials: Credentials,
        policy: RepositoryPolicy,
        issuer: TokenIssuer,
        mode: str = "token",
        cache_seconds: float = 5.0,
    ) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth mode must be one of {AUTH_MODES}, not {mode!r}")
        self.credentials = credentials
        self.policy = policy
        self.issuer = issuer
        self.mode = mode
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    # Registry requests.

    def authorize(
        self, authorization: str, kind: str, name: str, action: str, realm: str
    ) -> Principal | None:
        """Allow the request or raise :class:`AuthenticationRequired`.

        Returns the principal (None for an anonymous pull of a public
        repository, or when auth is off).
        """
        if self.mode == "none":
            return None
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = self.issuer.verify(value.strip())
            if token is None:
                raise self._challenge(realm, kind, name, action, "invalid_token")
            if not token.allows(kind, name, action):
                raise self._challenge(realm, kind, name, action, "insufficient_scope")
            return Principal(token.subject)
        if scheme == "basic":
            principal = self.basic(value)
            if principal is None:
                raise self._challenge(realm, kind, name, action, "invalid_credentials")
            return principal
        if kind == "repository" and action == PULL and self.policy.is_public(name):
            return None
        raise self._challenge(realm, kind, name, action, "")

    def challenge_for_base(self, authorization: str, realm: str) -> None:
        """``GET /v2/``: any valid credentials pass; none get the challenge."""
        if self.mode == "none":
            return
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.issuer.verify(value.strip()) is not None:
            return
        if scheme == "basic" and self.basic(value) is not None:
            return
        raise self._challenge(realm, "", "", "", "")

    def basic(self, value: str) -> Principal | None:
        """Verify a basic ``Authorization`` value (base64 ``user:password``)."""
        key = hashlib.sha256(value.strip().encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        principal = self.credentials.verify(user, password)
        if principal is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (principal, now + self._cache_seconds)
        return principal

    def _challenge(
        self, realm: str, kind: str, name: str, action: str, error: str
    ) -> AuthenticationRequired:
        if self.mode == "basic":
            header = 'Basic realm="artifactd"'
        else:
            header = f'Bearer realm="{realm}",service="{self.issuer.service}"'
            if kind:
                actions = {PUSH: "pull,push"}.get(action, action)
                header += f',scope="{kind}:{name}:{actions}"'
            if error in ("invalid_token", "insufficient_scope"):
                header += f',error="{error}"'
        if error == "insufficient_scope":
            return AuthenticationRequired(
                "DENIED", f"the token does not allow {action} on {name}", 401, header
            )
        what = f"{action} on {name}" if kind else "access to the registry"
        message = (
            f"credentials are invalid for {what}"
            if error
            else f"authentication required for {what}"
        )
        return AuthenticationRequired("UNAUTHORIZED", message, 401, header)

    # Token requests.

    def grant(
        self, principal: Principal | None, scopes: Iterable[Scope]
    ) -> list[Scope]:
        """What a token for ``principal`` may carry of the requested scopes."""
        granted = []
        for scope in scopes:
            if principal is not None:
                actions = scope.actions & (ALL_ACTIONS | {"*"})
            elif scope.type == "repository" and self.policy.is_public(scope.name):
                actions = scope.actions & {PULL}
            else:
                actions = frozenset()
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    def token_response(
        self, authorization: str, scopes: list[str], account: str = ""
    ) -> dict[str, object]:
        """The token endpoint's JSON answer; raises for bad credentials."""
        principal = None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            principal = self.basic(value)
            if principal is None:
                raise DistributionError(
                    "UNAUTHORIZED", "access key id or secret is invalid", 401
                )
        parsed = [Scope.parse(s) for text in scopes for s in _split_scopes(text)]
        granted = self.grant(principal, parsed)
        subject = principal.name if principal else "anonymous"
        token, expires_in, issued = self.issuer.issue(subject, granted)
        log.info(
            "token_issued subject=%s scopes=%s", subject, ";".join(map(str, granted))
        )
        return {
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued)),
        }


def _split_scopes(text: str) -> list[str]:
    # Old clients send several scopes space-separated in one parameter.
    return [part for part in text.split(" ") if part]


CredentialsCheck = Callable[[str, str], bool]


class CallableCredentials:
    """Credentials from a ``check(user, password) -> bool`` function."""

    def __init__(self, check: CredentialsCheck) -> None:
        self._check = check

    def verify(self, user: str, password: str) -> Principal | None:
        return Principal(user) if user and self._check(user, password) else None
