"""The embedded registry: the OCI Distribution Specification 1.1 over HTTP.

:func:`registry_routes` gives the ``/v2/`` routes and the token endpoint for
an app that mounts other things too; :func:`create_registry_app` wraps them
in a stand-alone Starlette app. Every refusal is a distribution error body
(``{"errors": [{"code", "message", "detail"}]}``) with the spec's code.

Blob bodies stream through in large chunks, written and hashed in worker
threads, so the event loop only moves buffers; nothing holds a layer whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from artifactd.errors import (
    AuthenticationRequired,
    DigestError,
    DistributionError,
    InvalidReferenceError,
    OCIError,
)
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import sha256_digest, validate_digest
from artifactd.oci.model import Index, Manifest, parse_manifest_or_index
from artifactd.oci.reference import validate_repository_name, validate_tag
from artifactd.registry.auth import DELETE, PULL, PUSH, Authorizer, Principal
from artifactd.registry.events import EventBus, PushEvent
from artifactd.registry.storage import RegistryStorage

log = logging.getLogger(__name__)

TOKEN_PATH = "/auth/token"
_BODY_BUFFER = 4 << 20
_READ_CHUNK = 1 << 20
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE_RE = re.compile(r"^(?:bytes )?(\d+)-(\d+)$")
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?P<name>.+)/blobs/uploads/?$"), "uploads"),
    (re.compile(r"^(?P<name>.+)/blobs/uploads/(?P<upload>[^/]+)$"), "upload"),
    (re.compile(r"^(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^(?P<name>.+)/manifests/(?P<reference>[^/]+)$"), "manifest"),
    (re.compile(r"^(?P<name>.+)/tags/list$"), "tags"),
    (re.compile(r"^(?P<name>.+)/referrers/(?P<digest>[^/]+)$"), "referrers"),
]


@dataclass
class RegistryConfig:
    """Tunables of the server; defaults suit a single-machine registry."""

    #: Base URL clients reach the service at (for the token realm); empty:
    #: taken from each request's Host header.
    public_url: str = ""
    #: Largest manifest accepted, in bytes (the spec suggests at least 4 MiB).
    max_manifest_size: int = 4 << 20
    #: Page size of tag and catalog lists when the client gives no ``n``.
    default_page_size: int = 1000
    extra_headers: dict[str, str] = field(default_factory=dict)


class Registry:
    """What the routes need: storage, authorization, events and settings."""

    def __init__(
        self,
        storage: RegistryStorage,
        authorizer: Authorizer,
        events: EventBus | None = None,
        config: RegistryConfig | None = None,
    ) -> None:
        self.storage = storage
        self.authorizer = authorizer
        self.events = events or EventBus()
        self.config = config or RegistryConfig()

    def store_manifest(
        self,
        name: str,
        data: bytes,
        media_type: str,
        doc: Manifest | Index,
        tag: str,
        reference: str,
    ) -> str:
        """Store a parsed manifest in ``name``, tagged when ``tag`` is given.

        Every blob or child manifest it refers to must already be in the
        repository, so a stored manifest is always complete; raises
        :class:`DistributionError` with the spec's code otherwise.
        """
        digest = sha256_digest(data)
        if ":" in reference and _validate_digest(reference) != digest:
            raise _error(
                "DIGEST_INVALID",
                f"manifest digest is {digest}, the URL names {reference}",
                400,
            )
        referrer = None
        if doc.subject is not None:
            referrer = _referrer_descriptor(doc, media_type, digest, len(data))
        with self.storage.reference_lock():
            self._check_references(name, doc)
            self.storage.put_manifest(
                name,
                data,
                media_type,
                tag=tag,
                subject=doc.subject.digest if doc.subject else "",
                referrer=referrer,
            )
            self.storage.link_blob(name, digest)
        return digest

    def _check_references(self, name: str, doc: Manifest | Index) -> None:
        if isinstance(doc, Manifest):
            for desc in [doc.config, *doc.layers]:
                if desc.media_type in mt.NOT_DISTRIBUTED_LAYER_TYPES or desc.extra.get(
                    "urls"
                ):
                    continue
                if not self.storage.repository_has_blob(name, desc.digest):
                    raise _error(
                        "MANIFEST_BLOB_UNKNOWN",
                        f"blob {desc.digest} is not in {name}; push it first",
                        400,
                        {"digest": desc.digest},
                    )
                # A fresh mtime tells a concurrent garbage collection to spare it.
                self.storage.touch_blob(desc.digest)
                size = self.storage.blob_size(desc.digest)
                if size != desc.size:
                    raise _error(
                        "MANIFEST_INVALID",
                        f"descriptor of {desc.digest} says {desc.size} bytes, "
                        f"the blob has {size}",
                        400,
                    )
            return
        for desc in doc.manifests:
            self.storage.touch_blob(desc.digest)
            if self.storage.get_manifest(name, desc.digest) is None:
                raise _error(
                    "MANIFEST_BLOB_UNKNOWN",
                    f"manifest {desc.digest} listed by the index is not in {name}",
                    400,
                    {"digest": desc.digest},
                )


def registry_routes(registry: Registry) -> list[BaseRoute]:
    """``/v2/``, everything under it, and the token endpoint."""
    handlers = _Handlers(registry)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v2/", handlers.base, methods=["GET", "HEAD"]),
        Route("/v2", handlers.base, methods=["GET", "HEAD"]),
        Route("/v2/{path:path}", handlers.dispatch, methods=methods),
        Route(TOKEN_PATH, handlers.token, methods=["GET", "POST"]),
    ]


def create_registry_app(registry: Registry) -> Starlette:
    """A stand-alone app serving only the registry."""
    return Starlette(routes=registry_routes(registry))


def error_response(exc: DistributionError, head: bool = False) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        body["detail"] = exc.detail
    headers = {"Docker-Distribution-API-Version": "registry/2.0"}
    if isinstance(exc, AuthenticationRequired):
        headers["WWW-Authenticate"] = exc.challenge
    if head:
        return Response(status_code=exc.status, headers=headers)
    return JSONResponse({"errors": [body]}, exc.status, headers=headers)


def _error(
    code: str, message: str, status: int, detail: Any = None
) -> DistributionError:
    return DistributionError(code, message, status, detail)


def _validate_name(name: str) -> str:
    try:
        return validate_repository_name(name)
    except InvalidReferenceError as exc:
        raise _error("NAME_INVALID", f"invalid repository name {name!r}", 400) from exc


def _validate_digest(digest: str) -> str:
    try:
        return validate_digest(digest)
    except DigestError as exc:
        raise _error("DIGEST_INVALID", str(exc), 400) from exc


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


class _Handlers:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.storage = registry.storage
        self.auth = registry.authorizer
        self.config = registry.config

    # Plumbing.

    def _realm(self, request: Request) -> str:
        base = self.config.public_url.rstrip("/")
        if not base:
            host = request.headers.get("host", "localhost")
            base = f"{request.url.scheme}://{host}"
        return base + TOKEN_PATH

    def _authorize(
        self, request: Request, kind: str, name: str, action: str
    ) -> Principal | None:
        return self.auth.authorize(
            request.headers.get("authorization", ""),
            kind,
            name,
            action,
            self._realm(request),
        )

    def _headers(self, **extra: str) -> dict[str, str]:
        headers = {"Docker-Distribution-API-Version": "registry/2.0"}
        headers.update(self.config.extra_headers)
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    async def base(self, request: Request) -> Response:
        try:
            self.auth.challenge_for_base(
                request.headers.get("authorization", ""), self._realm(request)
            )
        except DistributionError as exc:
            return error_response(exc, request.method == "HEAD")
        return JSONResponse({}, headers=self._headers())

    async def dispatch(self, request: Request) -> Response:
        path = request.path_params["path"]
        head = request.method == "HEAD"
        try:
            if path in ("_catalog", "_catalog/"):
                return await self.catalog(request)
            for pattern, kind in _ROUTES:
                match = pattern.match(path)
                if match:
                    params = match.groupdict()
                    params["name"] = _validate_name(params["name"])
                    handler = getattr(self, f"{kind}_{request.method.lower()}", None)
                    if handler is None:
                        raise _error(
                            "UNSUPPORTED",
                            f"{request.method} is not supported on {kind}",
                            405,
                        )
                    return await handler(request, **params)
            raise _error("NAME_INVALID", f"no registry route matches /v2/{path}", 404)
        except DistributionError as exc:
            return error_response(exc, head)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception:
            log.exception(
                "registry_request_failed method=%s path=%s", request.method, path
            )
            return error_response(
                _error("UNKNOWN", "internal error; see the service log", 500), head
            )

    async def _pull_scope(self, request: Request, name: str) -> None:
        self._authorize(request, "repository", name, PULL)
        if not await to_thread.run_sync(self.storage.repository_exists, name):
            raise _error("NAME_UNKNOWN", f"repository {name} is not known", 404)

    async def _push_scope(self, request: Request, name: str) -> Principal | None:
        principal = self._authorize(request, "repository", name, PUSH)
        allowed = await to_thread.run_sync(
            self.auth.policy.on_push_new_repository, name
        )
        if not allowed:
            raise _error(
                "DENIED",
                f"repository {name} does not exist and pushes may not create it "
                "(names are NAMESPACE/REPOSITORY; automatic creation must be on)",
                403,
            )
        return principal

    # Blobs.

    async def blob_head(self, request: Request, name: str, digest: str) -> Response:
        return await self.blob_get(request, name, digest)

    async def blob_get(self, request: Request, name: str, digest: str) -> Response:
        await self._pull_scope(request, name)
        digest = _validate_digest(digest)
        size = await to_thread.run_sync(self._linked_size, name, digest)
        if size is None:
            raise _error("BLOB_UNKNOWN", f"blob {digest} is unknown to {name}", 404)
        headers = self._headers(
            Docker_Content_Digest=digest,
            Accept_Ranges="bytes",
            ETag=f'"{digest}"',
            Cache_Control="max-age=31536000",
        )
        start, end, status = 0, size - 1, 200
        spec = request.headers.get("range")
        if spec:
            parsed = _parse_range(spec, size)
            if parsed is None:
                headers["Content-Range"] = f"bytes */{size}"
                return Response(status_code=416, headers=headers)
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        if request.method == "HEAD":
            return Response(
                status_code=status,
                headers=headers,
                media_type="application/octet-stream",
            )
        return StreamingResponse(
            self._read_blob(digest, start, length),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    def _linked_size(self, name: str, digest: str) -> int | None:
        if not self.storage.repository_has_blob(name, digest):
            return None
        return self.storage.blob_size(digest)

    async def _read_blob(
        self, digest: str, start: int, length: int
    ) -> AsyncIterator[bytes]:
        handle = await to_thread.run_sync(self.storage.open_blob, digest)
        try:
            if start:
                await to_thread.run_sync(handle.seek, start)
            remaining = length
            while remaining > 0:
                chunk = await to_thread.run_sync(
                    handle.read, min(_READ_CHUNK, remaining)
                )
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            handle.close()

    async def blob_delete(self, request: Request, name: str, digest: str) -> Response:
        self._authorize(request, "repository", name, DELETE)
        digest = _validate_digest(digest)
        if not await to_thread.run_sync(self.storage.unlink_blob, name, digest):
            raise _error("BLOB_UNKNOWN", f"blob {digest} is unknown to {name}", 404)
        return Response(status_code=202, headers=self._headers(Content_Length="0"))

    # Uploads.

    def _upload_headers(self, name: str, upload_id: str, size: int) -> dict[str, str]:
        return self._headers(
            Location=f"/v2/{name}/blobs/uploads/{upload_id}",
            Range=f"0-{max(size - 1, 0)}",
            Docker_Upload_UUID=upload_id,
            Content_Length="0",
        )

    def _blob_created(self, name: str, digest: str) -> Response:
        headers = self._headers(
            Location=f"/v2/{name}/blobs/{digest}",
            Docker_Content_Digest=digest,
            Content_Length="0",
        )
        return Response(status_code=201, headers=headers)

    async def uploads_post(self, request: Request, name: str) -> Response:
        await self._push_scope(request, name)
        query = request.query_params
        mount, source = query.get("mount"), query.get("from")
        if mount and source:
            mounted = await self._try_mount(
                request, name, _validate_digest(mount), source
            )
            if mounted:
                return self._blob_created(name, mount)
        upload_id = await to_thread.run_sync(self.storage.start_upload, name)
        digest = query.get("digest")
        if digest is None:
            return Response(
                status_code=202, headers=self._upload_headers(name, upload_id, 0)
            )
        # Monolithic upload: the body is the whole blob.
        try:
            digest = _validate_digest(digest)
            size = await self._receive(request, name, upload_id, 0)
            _check_length(request, size)
            await to_thread.run_sync(self._commit, name, upload_id, digest)
        except BaseException:
            await to_thread.run_sync(self._cancel_quietly, name, upload_id)
            raise
        return self._blob_created(name, digest)

    async def _try_mount(
        self, request: Request, name: str, digest: str, source: str
    ) -> bool:
        try:
            _validate_name(source)
            self._authorize(request, "repository", source, PULL)
        except DistributionError:
            return False

        def mount() -> bool:
            with self.storage.reference_lock():
                if not self.storage.repository_has_blob(source, digest):
                    return False
                self.storage.link_blob(name, digest)
                return True

        return await to_thread.run_sync(mount)

    def _commit(self, name: str, upload_id: str, digest: str) -> None:
        # Under the shared lock, so garbage collection sees the blob and its
        # link arrive together (see registry.gc).
        with self.storage.reference_lock():
            self.storage.commit_upload(name, upload_id, digest)
            self.storage.link_blob(name, digest)
        log.debug("blob_pushed repo=%s digest=%s", name, digest)

    def _cancel_quietly(self, name: str, upload_id: str) -> None:
        try:
            self.storage.cancel_upload(name, upload_id)
        except DistributionError:
            pass

    async def _receive(
        self, request: Request, name: str, upload_id: str, offset: int
    ) -> int:
        """Append the request body to an upload; returns the upload's new size.

        Bytes received before a client disconnects are kept, so the client
        can ask for the upload's status and resume from there.
        """
        buffer = bytearray()
        try:
            async for chunk in request.stream():
                buffer += chunk
                if len(buffer) >= _BODY_BUFFER:
                    offset = await to_thread.run_sync(
                        self.storage.append_upload,
                        name,
                        upload_id,
                        bytes(buffer),
                        offset,
                    )
                    buffer.clear()
        finally:
            if buffer:
                offset = await to_thread.run_sync(
                    self.storage.append_upload, name, upload_id, bytes(buffer), offset
                )
        return offset

    async def upload_get(self, request: Request, name: str, upload: str) -> Response:
        self._authorize(request, "repository", name, PUSH)
        size = await to_thread.run_sync(self.storage.upload_size, name, upload)
        return Response(
            status_code=204, headers=self._upload_headers(name, upload, size)
        )

    async def upload_patch(self, request: Request, name: str, upload: str) -> Response:
        self._authorize(request, "repository", name, PUSH)
        size = await to_thread.run_sync(self.storage.upload_size, name, upload)
        content_range = request.headers.get("content-range")
        if content_range:
            match = _CONTENT_RANGE_RE.match(content_range.strip())
            if not match or int(match.group(1)) != size:
                headers = self._upload_headers(name, upload, size)
                return Response(status_code=416, headers=headers)
        size = await self._receive(request, name, upload, size)
        return Response(
            status_code=202, headers=self._upload_headers(name, upload, size)
        )

    async def upload_put(self, request: Request, name: str, upload: str) -> Response:
        self._authorize(request, "repository", name, PUSH)
        digest = request.query_params.get("digest")
        if not digest:
            raise _error("DIGEST_INVALID", "the final PUT needs ?digest=", 400)
        digest = _validate_digest(digest)
        size = await to_thread.run_sync(self.storage.upload_size, name, upload)
        await self._receive(request, name, upload, size)
        await to_thread.run_sync(self._commit, name, upload, digest)
        return self._blob_created(name, digest)

    async def upload_delete(self, request: Request, name: str, upload: str) -> Response:
        self._authorize(request, "repository", name, PUSH)
        await to_thread.run_sync(self.storage.cancel_upload, name, upload)
        return Response(status_code=204, headers=self._headers(Content_Length="0"))

    # Manifests.

    async def manifest_head(
        self, request: Request, name: str, reference: str
    ) -> Response:
        return await self.manifest_get(request, name, reference)

    async def manifest_get(
        self, request: Request, name: str, reference: str
    ) -> Response:
        await self._pull_scope(request, name)
        _validate_reference(reference)
        record = await to_thread.run_sync(self.storage.get_manifest, name, reference)
        if record is None:
            raise _error(
                "MANIFEST_UNKNOWN", f"manifest {reference} is unknown to {name}", 404
            )
        accept = _accepted(request)
        if accept and record.media_type not in accept and "*/*" not in accept:
            raise _error(
                "MANIFEST_UNKNOWN",
                f"manifest {reference} is a {record.media_type}, which the "
                "request's Accept header does not list",
                404,
            )
        headers = self._headers(
            Docker_Content_Digest=record.digest,
            ETag=f'"{record.digest}"',
            Content_Length=str(len(record.data)),
        )
        body = b"" if request.method == "HEAD" else record.data
        return Response(body, headers=headers, media_type=record.media_type)

    async def manifest_put(
        self, request: Request, name: str, reference: str
    ) -> Response:
        principal = await self._push_scope(request, name)
        tag = "" if ":" in reference else _validate_reference(reference)
        data = await self._read_manifest(request)
        media_type, doc = _parse_manifest(data, _media_type(request))
        digest = await to_thread.run_sync(
            self.registry.store_manifest, name, data, media_type, doc, tag, reference
        )
        event = PushEvent(
            repository=name,
            tag=tag,
            digest=digest,
            media_type=media_type,
            size=len(data),
            actor=principal.name if principal else "",
            request_host=request.headers.get("host", ""),
            request_addr=request.client.host if request.client else "",
            user_agent=request.headers.get("user-agent", ""),
        )
        log.info(
            "manifest_pushed repo=%s tag=%s digest=%s media_type=%s",
            name,
            tag,
            digest,
            media_type,
        )
        await to_thread.run_sync(self.registry.events.publish, event)
        headers = self._headers(
            Location=f"/v2/{name}/manifests/{digest}",
            Docker_Content_Digest=digest,
            Content_Length="0",
        )
        if doc.subject is not None:
            headers["OCI-Subject"] = doc.subject.digest
        return Response(status_code=201, headers=headers)

    async def _read_manifest(self, request: Request) -> bytes:
        limit = self.config.max_manifest_size
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _error("MANIFEST_INVALID", f"manifest is over {limit} bytes", 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _error("MANIFEST_INVALID", f"manifest is over {limit} bytes", 413)
        return bytes(body)

    async def manifest_delete(
        self, request: Request, name: str, reference: str
    ) -> Response:
        self._authorize(request, "repository", name, DELETE)
        _validate_reference(reference)
        if ":" in reference:
            deleted = await to_thread.run_sync(
                self.storage.delete_manifest, name, reference
            )
        else:
            deleted = await to_thread.run_sync(self.storage.delete_tag, name, reference)
        if not deleted:
            raise _error(
                "MANIFEST_UNKNOWN", f"manifest {reference} is unknown to {name}", 404
            )
        log.info("manifest_deleted repo=%s reference=%s", name, reference)
        return Response(status_code=202, headers=self._headers(Content_Length="0"))

    # Listings.

    async def tags_get(self, request: Request, name: str) -> Response:
        await self._pull_scope(request, name)
        tags = await to_thread.run_sync(self.storage.list_tags, name)
        page, link = self._page(request, tags, f"/v2/{name}/tags/list")
        headers = self._headers(**({"Link": link} if link else {}))
        return JSONResponse({"name": name, "tags": page}, headers=headers)

    async def catalog(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise _error("UNSUPPORTED", "the catalog is read-only", 405)
        self._authorize(request, "registry", "catalog", "*")
        names = await to_thread.run_sync(self.storage.list_repositories)
        page, link = self._page(request, names, "/v2/_catalog")
        headers = self._headers(**({"Link": link} if link else {}))
        return JSONResponse({"repositories": page}, headers=headers)

    def _page(
        self, request: Request, items: list[str], path: str
    ) -> tuple[list[str], str]:
        """One page after ``last``, at most ``n`` long, and the next page's Link."""
        query = request.query_params
        n_text = query.get("n")
        n = self.config.default_page_size
        if n_text is not None:
            if not n_text.isdigit():
                raise _error("PAGINATION_NUMBER_INVALID", f"invalid n={n_text!r}", 400)
            n = int(n_text)
        last = query.get("last")
        if last:
            items = [item for item in items if item > last]
        page = items[:n]
        if len(items) <= n or not page:
            return page, ""
        params = urlencode({"n": n, "last": page[-1]})
        return page, f'<{quote(path)}?{params}>; rel="next"'

    async def referrers_get(self, request: Request, name: str, digest: str) -> Response:
        await self._pull_scope(request, name)
        digest = _validate_digest(digest)
        found = await to_thread.run_sync(self.storage.referrers, name, digest)
        headers = self._headers()
        artifact_type = request.query_params.get("artifactType")
        if artifact_type:
            found = [d for d in found if d.get("artifactType") == artifact_type]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found}
        return JSONResponse(body, headers=headers, media_type=mt.OCI_INDEX)

    # Tokens.

    async def token(self, request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            scopes = [str(s) for s in form.getlist("scope")]
        else:
            scopes = request.query_params.getlist("scope")
        try:
            answer = await to_thread.run_sync(
                self.auth.token_response,
                request.headers.get("authorization", ""),
                scopes,
            )
        except DistributionError as exc:
            return error_response(exc)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """First and last byte of a single ``bytes=`` range, or None if unsatisfiable."""
    match = _RANGE_RE.match(spec.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        return None
    return start, end


def _check_length(request: Request, size: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) != size:
        raise _error(
            "SIZE_INVALID",
            f"received {size} bytes, Content-Length says {declared}",
            400,
        )


def _validate_reference(reference: str) -> str:
    if ":" in reference:
        return _validate_digest(reference)
    try:
        return validate_tag(reference)
    except InvalidReferenceError as exc:
        raise _error("TAG_INVALID", f"invalid tag {reference!r}", 400) from exc


def _accepted(request: Request) -> set[str]:
    values = request.headers.getlist("accept")
    return {
        part.split(";")[0].strip()
        for value in values
        for part in value.split(",")
        if part.strip()
    }


def _parse_manifest(data: bytes, content_type: str) -> tuple[str, Manifest | Index]:
    """The manifest's media type and parsed form, or MANIFEST_INVALID."""
    try:
        doc = parse_manifest_or_index(data, content_type)
    except OCIError as exc:
        raise _error("MANIFEST_INVALID", str(exc), 400) from exc
    declared = doc.raw.get("mediaType")
    if declared and content_type and declared != content_type:
        raise _error(
            "MANIFEST_INVALID",
            f"manifest mediaType {declared} does not match Content-Type {content_type}",
            400,
        )
    return doc.media_type, doc


def _referrer_descriptor(
    doc: Manifest | Index, media_type: str, digest: str, size: int
) -> dict[str, Any]:
    artifact_type = doc.artifact_type
    if not artifact_type and isinstance(doc, Manifest):
        artifact_type = doc.config.media_type
    desc: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if artifact_type:
        desc["artifactType"] = artifact_type
    if doc.annotations:
        desc["annotations"] = dict(doc.annotations)
    return desc
