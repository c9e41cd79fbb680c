"""The ASGI app that answers the RPC API on ``/`` (GET and POST).

Each request goes through the same steps, in this order, and stops at the
first refusal: decode, authenticate (signature, time, nonce), check version
and action, validate parameters against the action table, check the
instance, run the handler in one database transaction, render. A refused
request therefore never reaches a handler and changes nothing; a handler that
fails rolls its transaction back.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from artifactd.errors import ArtifactdError, RegistryError
from artifactd.openapi.actions import ACTIONS
from artifactd.openapi.errors import (
    BusinessError,
    GatewayError,
    missing_parameter,
)
from artifactd.openapi.handlers import HANDLERS, Context
from artifactd.openapi.protocol import MAX_BODY_BYTES, RpcRequest, build_request
from artifactd.openapi.render import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    render_json,
    render_xml,
)
from artifactd.openapi.schema import Action
from artifactd.openapi.services import ApiServices
from artifactd.openapi.signing import SignatureVerifier
from artifactd.openapi.throttle import RateLimiter

log = logging.getLogger(__name__)

API_VERSION = "2018-12-01"
DEFAULT_HOST_ID = "artifactd"


def create_api_app(
    services: ApiServices,
    verifier: SignatureVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
    host_id: str = DEFAULT_HOST_ID,
) -> Starlette:
    """Build the API app (the routes of :func:`api_routes`, alone).

    ``services`` gives the handlers their store and registry; ``verifier``
    defaults to one over ``services.lookup_secret`` with an in-memory nonce
    cache; ``rate_limiter`` (per access key) is off unless given.
    """
    return Starlette(routes=api_routes(services, verifier, rate_limiter, host_id))


def api_routes(
    services: ApiServices,
    verifier: SignatureVerifier | None = None,
    rate_limiter: RateLimiter | None = None,
    host_id: str = DEFAULT_HOST_ID,
) -> list[BaseRoute]:
    """``/`` (the RPC API, GET and POST) and ``/-/ping`` (a no-op).

    For mounting next to the registry: pass them as the app's last routes.
    """
    missing = sorted(set(ACTIONS) - set(HANDLERS))
    if missing:
        raise ArtifactdError(f"actions without a handler: {', '.join(missing)}")
    api = _Api(
        services,
        verifier or SignatureVerifier(services.lookup_secret),
        rate_limiter,
        host_id,
    )
    return [
        # Every method reaches the API, so others get the catalog's JSON error.
        Route("/", api),
        Route("/-/ping", _ping, methods=["GET"]),
    ]


# Request ids look like the cloud's (upper-case UUIDs): a random prefix per
# process and a counter, unique without a random draw per request.
_request_ids = ("", itertools.count())


def _restart_request_ids() -> None:
    global _request_ids
    _request_ids = (str(uuid.uuid4()).upper()[:24], itertools.count(1))


_restart_request_ids()
os.register_at_fork(after_in_child=_restart_request_ids)


def _new_request_id() -> str:
    prefix, numbers = _request_ids
    return f"{prefix}{next(numbers) % (1 << 48):012X}"


class RpcFastPath:
    """ASGI middleware sending requests for ``/`` straight to the API.

    In an app that mounts the registry and more, ``/`` is the API's only path
    and by far its busiest (clients poll GetArtifactBuildTask); answering it
    ahead of the router saves a route scan and Starlette's error and
    exception layers (each wraps ``send``) on every call. Install it as the
    app's whole ``middleware_stack``, around what Starlette would build. The
    API catches its own errors, so nothing else is needed.
    """

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.api = next(
            route.app
            for route in routes
            if isinstance(route, Route) and isinstance(route.endpoint, _Api)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/":
            await self.api(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _ping(request: Request) -> Response:
    """A no-op answer: liveness probes, and the benchmark's baseline."""
    return PlainTextResponse("ok")


class _Api:
    def __init__(
        self,
        services: ApiServices,
        verifier: SignatureVerifier,
        rate_limiter: RateLimiter | None,
        host_id: str,
    ) -> None:
        self.services = services
        self.verifier = verifier
        self.rate_limiter = rate_limiter
        self.host_id = host_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request (a plain ASGI app: this is the hot path)."""
        started = time.perf_counter()
        request_id = _new_request_id()
        rpc: RpcRequest | None = None
        try:
            rpc = await self._read(scope, receive)
            body = await self._answer(rpc)
            answer = self._success(rpc, request_id, body)
            code = "success"
        except BusinessError as exc:
            answer = self._in_band(rpc, request_id, exc)
            code = exc.code
        except GatewayError as exc:
            answer = self._gateway_error(request_id, exc)
            code = exc.code
        except Exception:
            log.exception("api_internal_error request_id=%s", request_id)
            answer = self._gateway_error(request_id, GatewayError("InternalError"))
            code = "InternalError"
        status, headers, content = answer
        headers.append((b"content-length", str(len(content)).encode()))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": content})
        if log.isEnabledFor(logging.INFO):
            log.info(
                "api_request action=%s code=%s status=%d ms=%.2f request_id=%s",
                rpc.action if rpc else None,
                code,
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    @staticmethod
    async def _read(scope: Scope, receive: Receive) -> RpcRequest:
        """Decode the request; a body over MAX_BODY_BYTES is refused unread."""
        if scope["method"] not in ("GET", "POST"):
            raise GatewayError("UnsupportedHTTPMethod", detail=scope["method"])
        framed = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                framed = True
                if value.isdigit() and int(value) > MAX_BODY_BYTES:
                    raise GatewayError(
                        "RequestEntityTooLarge", detail=str(MAX_BODY_BYTES)
                    )
            elif name == b"transfer-encoding":
                framed = True
        chunks: list[bytes] = []
        # Without either header a request has no body (RFC 9112, 6.3), as
        # for the SDKs' GET calls: nothing to wait for.
        size, more = 0, framed
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayError("InternalError")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise GatewayError("RequestEntityTooLarge", detail=str(MAX_BODY_BYTES))
            chunks.append(chunk)
            more = message.get("more_body", False)
        return build_request(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            scope["headers"],
            b"".join(chunks),
        )

    async def _answer(self, rpc: RpcRequest) -> dict[str, Any]:
        access_key_id = self.verifier.verify(rpc)
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(access_key_id)
        action = self._action(rpc)
        params = action.validate(rpc.params)
        if "InstanceId" in params:
            self.services.check_instance(params["InstanceId"])
        handler = HANDLERS[action.name]
        context = Context(self.services, params, access_key_id, action.name)
        try:
            if self.services.run_inline and not action.uses_registry:
                return handler(context)
            return await run_in_threadpool(handler, context)
        except RegistryError as exc:
            log.warning("api_registry_unavailable action=%s error=%s", action.name, exc)
            raise GatewayError("ServiceUnavailable") from exc

    @staticmethod
    def _action(rpc: RpcRequest) -> Action:
        version = rpc.version
        if not version:
            raise missing_parameter("Version")
        if version != API_VERSION:
            raise GatewayError("InvalidVersion")
        name = rpc.action
        if not name:
            raise missing_parameter("Action")
        action = ACTIONS.get(name)
        if action is None:
            raise GatewayError("InvalidAction.NotFound")
        return action

    @staticmethod
    def _success(rpc: RpcRequest, request_id: str, body: dict[str, Any]) -> Answer:
        full = {"RequestId": request_id, "Code": "success", "IsSuccess": True, **body}
        return _render(rpc, full)

    @staticmethod
    def _in_band(rpc: RpcRequest | None, request_id: str, exc: BusinessError) -> Answer:
        body = {
            "RequestId": request_id,
            "Code": exc.code,
            "IsSuccess": False,
            "Message": exc.message,
        }
        return _render(rpc, body)

    def _gateway_error(self, request_id: str, exc: GatewayError) -> Answer:
        body = {
            "RequestId": request_id,
            "HostId": self.host_id,
            "Code": exc.code,
            "Message": exc.message,
            "Recommend": f"Look up {exc.code} in docs/api.md (request {request_id}).",
        }
        headers = [(b"content-type", _JSON)]
        if exc.retry_after is not None:
            # Tea 0.4 raises ThrottlingException when this header is present.
            retry_ms = str(max(1, int(exc.retry_after * 1000)))
            headers.append((b"x-acs-retry-after", retry_ms.encode()))
        return exc.status, headers, render_json(body)


#: (HTTP status, raw headers, body bytes) of one answer.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
_JSON = JSON_CONTENT_TYPE.encode()
_XML = XML_CONTENT_TYPE.encode()


def _render(rpc: RpcRequest | None, body: dict[str, Any]) -> Answer:
    if rpc is not None and rpc.wants_xml:
        content = render_xml(f"{rpc.action}Response", body)
        return 200, [(b"content-type", _XML)], content
    return 200, [(b"content-type", _JSON)], render_json(body)
