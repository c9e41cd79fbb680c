"""A client for any OCI registry: manifests, blobs, whole images, byte ranges.

:class:`RegistryClient` speaks the distribution API to one host with basic
or bearer-token auth (it follows whatever ``WWW-Authenticate`` challenge the
registry sends). Requests are retried with exponential backoff on
connection errors, 5xx and 429; a download cut off midway resumes with a
``Range`` request. Blobs stream in both directions, never whole in memory:
uploads go up in one streamed ``PUT`` from a file, or in bounded ``PATCH``
chunks from a stream (resumed from the registry's ``Range`` after an
error). Every download is checked against its digest when it ends.

:class:`RegistryImageSource` and :class:`RegistryImageSink` adapt a client
and a repository to the converter's image source and sink protocols, and
:class:`RangeReader` reads parts of one blob, so a lazy reader can fetch a
single file from a remote layer.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from artifactd.errors import DigestError, DistributionError, RegistryError
from artifactd.oci import mediatypes as mt
from artifactd.oci.digest import Digester, VerifyingReader, sha256_digest
from artifactd.oci.layout import Layout, LayoutWriter, blob_path
from artifactd.oci.model import Descriptor, Index, parse_manifest_or_index
from artifactd.oci.reference import RegistryReference

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(
    [mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST]
)
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_STREAM_CHUNK = 1 << 20
# Spec codes for error answers that carry no body (HEAD).
_STATUS_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 429: "TOOMANYREQUESTS"}


def _transient(message: str) -> RegistryError:
    """A RegistryError the build engine may retry (``transient`` is True)."""
    exc = RegistryError(message)
    exc.transient = True  # type: ignore[attr-defined]
    return exc


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in ("localhost", "[::1]") or name.startswith("127.")


class RegistryClient:
    """One registry host; thread-safe, so layers may move in parallel.

    ``plain_http`` defaults to True for loopback hosts only. Blobs up to
    ``monolithic_limit`` bytes from a file go up in one request; larger ones
    and streams go up in ``chunk_size`` pieces.
    """

    def __init__(
        self,
        host: str,
        *,
        username: str = "",
        password: str = "",
        plain_http: bool | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 60.0,
        chunk_size: int = 16 << 20,
        monolithic_limit: int = 256 << 20,
        verify_tls: bool = True,
    ) -> None:
        if plain_http is None:
            plain_http = is_loopback(host)
        self.host = host
        self.base_url = f"{'http' if plain_http else 'https'}://{host}"
        self._username = username
        self._password = password
        self._retries = retries
        self._backoff = backoff
        self.chunk_size = chunk_size
        self.monolithic_limit = monolithic_limit
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0),
            verify=verify_tls,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Auth.

    def _auth_header(self, scope: str) -> dict[str, str]:
        if self._challenge is None:
            return {}
        scheme, params = self._challenge
        if scheme == "basic":
            return self._basic() or {}
        with self._lock:
            cached = self._tokens.get(scope)
        if cached is None or cached[1] < time.monotonic():
            cached = self._fetch_token(params, scope)
        return {"Authorization": f"Bearer {cached[0]}"}

    def _basic(self) -> dict[str, str] | None:
        if not self._username:
            return None
        raw = f"{self._username}:{self._password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def _fetch_token(self, params: dict[str, str], scope: str) -> tuple[str, float]:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.host} sent a bearer challenge without realm")
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query += [("scope", s) for s in scope.split(" ") if s]
        try:
            response = self._http.get(realm, params=query, headers=self._basic() or {})
        except httpx.HTTPError as exc:
            raise _transient(f"token request to {realm} failed: {exc}") from exc
        if response.status_code == 401:
            raise DistributionError(
                "UNAUTHORIZED", f"{self.host} refused the credentials", 401
            )
        if response.status_code != 200:
            raise _transient(f"token endpoint {realm} answered {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token endpoint {realm} returned no token")
        expires_in = int(body.get("expires_in") or 60)
        entry = (str(token), time.monotonic() + max(10, expires_in - 10))
        with self._lock:
            self._tokens[scope] = entry
        return entry

    def _learn_challenge(self, response: httpx.Response) -> bool:
        """Remember the registry's challenge; True if a retry may now succeed."""
        header = response.headers.get("www-authenticate", "")
        scheme, _, rest = header.partition(" ")
        scheme = scheme.lower()
        if scheme not in ("basic", "bearer"):
            return False
        params = dict(_CHALLENGE_PARAM_RE.findall(rest))
        with self._lock:
            if self._challenge != (scheme, params):
                self._challenge = (scheme, params)
                self._tokens.clear()
        return scheme == "bearer" or bool(self._username)

    # Requests.

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return self.base_url + path_or_url

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: Callable[[], Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with auth and retries; ``content`` makes a fresh body per attempt.

        Returns the response for any status below 500 except 429; the caller
        checks it (see :meth:`check`). A streamed response must be closed.
        """
        # Merged by hand: an upload Location may carry its own query (state).
        url = httpx.URL(self._url(path))
        if params:
            url = url.copy_merge_params(params)
        delay = self._backoff
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                method,
                url,
                headers={**self._auth_header(scope), **(headers or {})},
                content=content() if content is not None else None,
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt > self._retries:
                    raise _transient(f"{method} {path} on {self.host}: {exc}") from exc
                log.warning(
                    "registry_retry host=%s method=%s path=%s error=%s",
                    self.host,
                    method,
                    path,
                    exc,
                )
                delay = self._sleep(delay, None)
                continue
            if response.status_code == 401 and not reauthenticated:
                reauthenticated = True
                with self._lock:
                    self._tokens.pop(scope, None)
                if self._learn_challenge(response):
                    response.close()
                    continue
            if response.status_code in (429, 502, 503, 504, 500):
                if attempt <= self._retries:
                    retry_after = response.headers.get("retry-after")
                    response.close()
                    delay = self._sleep(delay, retry_after)
                    continue
            return response

    def _sleep(self, delay: float, retry_after: str | None) -> float:
        wait = delay * (0.5 + random.random())
        if retry_after and retry_after.isdigit():
            wait = min(float(retry_after), 60.0)
        time.sleep(wait)
        return min(delay * 2, 30.0)

    @staticmethod
    def check(response: httpx.Response, *expected: int) -> httpx.Response:
        """Return the response if its status is expected; raise otherwise."""
        if response.status_code in expected:
            return response
        if not response.is_stream_consumed:
            response.read()
        # A HEAD answer has no body: name the code the status implies.
        code = _STATUS_CODES.get(response.status_code, "UNKNOWN")
        message = response.text[:200] or f"HTTP {response.status_code}"
        try:
            errors = response.json().get("errors") or []
            if errors:
                code = str(errors[0].get("code", code))
                message = str(errors[0].get("message", message))
        except (ValueError, AttributeError):
            pass
        exc = DistributionError(
            code,
            f"{response.request.method} {response.request.url.path}: {message}",
            response.status_code,
        )
        exc.transient = response.status_code >= 500 or response.status_code == 429  # type: ignore[attr-defined]
        raise exc

    # Manifests.

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """Manifest bytes, media type and digest; checked when ``reference`` is one."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "pull"),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        data = self.check(response, 200).content
        digest = sha256_digest(data)
        if ":" in reference and digest != reference:
            raise DigestError(f"manifest {reference} arrived with digest {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0]
        if media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            media_type = parse_manifest_or_index(data).media_type
        return data, media_type, digest

    def put_manifest(
        self, repository: str, reference: str, data: bytes, media_type: str
    ) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "pull,push"),
            headers={"Content-Type": media_type},
            content=lambda: data,
        )
        self.check(response, 201, 200, 202)
        digest = sha256_digest(data)
        answered = response.headers.get("docker-content-digest")
        if answered and answered != digest:
            raise DigestError(f"registry stored manifest as {answered}, not {digest}")
        return digest

    def delete_manifest(self, repository: str, reference: str) -> None:
        response = self.request(
            "DELETE",
            f"/v2/{repository}/manifests/{reference}",
            _scope(repository, "delete"),
        )
        self.check(response, 202, 200)

    def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """Every tag, following ``Link`` pagination."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        while path:
            response = self.request("GET", path, _scope(repository, "pull"))
            self.check(response, 200)
            tags += response.json().get("tags") or []
            path = _next_link(response)
        return tags

    # Blobs.

    def blob_size(self, repository: str, digest: str) -> int | None:
        """``HEAD`` the blob: its size, or None if the repository lacks it."""
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", _scope(repository, "pull")
        )
        if response.status_code == 404:
            return None
        self.check(response, 200)
        return int(response.headers.get("content-length", "0"))

    def open_blob(self, repository: str, desc: Descriptor) -> BinaryIO:
        """A stream of the blob that raises DigestError at its end if corrupt."""
        stream = _BlobStream(self, repository, desc.digest)
        return _VerifiedBlob(stream, desc.digest, desc.size)  # type: ignore[return-value]

    def read_range(self, repository: str, digest: str, offset: int, size: int) -> bytes:
        """``size`` bytes of a blob from ``offset`` (fewer at its end)."""
        if size <= 0:
            return b""
        end = offset + size - 1
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            _scope(repository, "pull"),
            headers={"Range": f"bytes={offset}-{end}"},
            stream=True,
        )
        try:
            if response.status_code == 416:
                return b""
            self.check(response, 206, 200)
            if response.status_code == 206:
                return response.read()
            # The registry ignored the Range: skip to the part we want.
            return _slice(response.iter_bytes(_STREAM_CHUNK), offset, size)
        finally:
            response.close()

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Link a blob from ``source`` into ``repository``; False if refused."""
        response = self.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            f"{_scope(repository, 'pull,push')} {_scope(source, 'pull')}",
            params={"mount": digest, "from": source},
        )
        if response.status_code == 201:
            return True
        self.check(response, 202)
        self._cancel(repository, response.headers.get("location", ""))
        return False

    def push_blob_file(self, repository: str, path: Path, desc: Descriptor) -> None:
        """Upload a file as ``desc`` (skipped if the registry has it)."""
        if self.blob_size(repository, desc.digest) is not None:
            return
        if desc.size > self.monolithic_limit:
            with open(path, "rb") as handle:
                self._push_chunked(repository, handle, desc)
            return
        location = self._start_upload(repository)

        def body() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while chunk := handle.read(_STREAM_CHUNK):
                    yield chunk

        response = self.request(
            "PUT",
            location,
            _scope(repository, "pull,push"),
            params={"digest": desc.digest},
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(desc.size),
            },
            content=body,
        )
        self.check(response, 201, 204)

    def push_blob_stream(
        self, repository: str, stream: BinaryIO, desc: Descriptor
    ) -> None:
        """Upload a stream as ``desc`` in chunks (skipped if the registry has it)."""
        if self.blob_size(repository, desc.digest) is not None:
            return
        self._push_chunked(repository, stream, desc)

    def push_blob_bytes(self, repository: str, data: bytes, desc: Descriptor) -> None:
        if self.blob_size(repository, desc.digest) is not None:
            return
        location = self._start_upload(repository)
        response = self.request(
            "PUT",
            location,
            _scope(repository, "pull,push"),
            params={"digest": desc.digest},
            headers={"Content-Type": "application/octet-stream"},
            content=lambda: data,
        )
        self.check(response, 201, 204)

    def _start_upload(self, repository: str) -> str:
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", _scope(repository, "pull,push")
        )
        self.check(response, 202)
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"{self.host} started an upload without Location")
        return location

    def _push_chunked(
        self, repository: str, stream: BinaryIO, desc: Descriptor
    ) -> None:
        """PATCH bounded chunks; after an error, resume where the registry stands."""
        location = self._start_upload(repository)
        scope = _scope(repository, "pull,push")
        digester = Digester(desc.digest.split(":", 1)[0])
        offset = 0
        while chunk := stream.read(self.chunk_size):
            digester.update(chunk)
            location = self._patch_chunk(repository, location, chunk, offset)
            offset += len(chunk)
        if digester.digest() != desc.digest or digester.size != desc.size:
            self._cancel(repository, location)
            raise DigestError(
                f"stream for {desc.digest} has digest {digester.digest()} "
                f"and {digester.size} bytes"
            )
        response = self.request(
            "PUT", location, scope, params={"digest": desc.digest}, content=lambda: b""
        )
        self.check(response, 201, 204)

    def _patch_chunk(
        self, repository: str, location: str, chunk: bytes, offset: int
    ) -> str:
        """Send one chunk (resending only what the registry lacks); new Location."""
        scope = _scope(repository, "pull,push")
        sent = 0
        for _ in range(self._retries + 1):
            part = chunk[sent:]
            start = offset + sent
            try:
                response = self.request(
                    "PATCH",
                    location,
                    scope,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + len(part) - 1}",
                    },
                    content=lambda part=part: part,
                )
                if response.status_code == 416:
                    raise _transient("registry disagrees on the upload offset")
                self.check(response, 202, 204)
                return response.headers.get("location") or location
            except RegistryError as exc:
                if not getattr(exc, "transient", False):
                    raise
                have = self._upload_offset(location, scope)
                if have is None and offset == 0:
                    # "0-0" is both an empty upload and a one-byte one:
                    # start over rather than guess.
                    self._cancel(repository, location)
                    location, sent = self._start_upload(repository), 0
                    continue
                if have is None or not offset <= have <= offset + len(chunk):
                    raise RegistryError(
                        f"upload on {self.host} holds {have} bytes; cannot resume "
                        f"a chunk at {offset}"
                    ) from exc
                sent = have - offset
                if sent == len(chunk):
                    return location
        raise _transient(f"chunk at {offset} failed {self._retries + 1} times")

    def _upload_offset(self, location: str, scope: str) -> int | None:
        """How many bytes the upload holds; None when the registry says "0-0".

        Registries answer "0-0" for an empty upload as well as for one byte
        (the header names the last byte held, and an empty upload has none),
        and an absent ``Range`` means nothing was received.
        """
        response = self.check(self.request("GET", location, scope), 204, 200)
        value = response.headers.get("range")
        if value is None:
            return 0
        match = re.match(r"^(?:bytes=)?0-(\d+)$", value.strip())
        if match is None:
            raise RegistryError(f"{self.host} reports an upload range of {value!r}")
        last = int(match.group(1))
        return None if last == 0 else last + 1

    def _cancel(self, repository: str, location: str) -> None:
        if not location:
            return
        try:
            self.request("DELETE", location, _scope(repository, "pull,push")).close()
        except RegistryError:
            pass

    # Images.

    def pull_image(
        self, ref: RegistryReference, layout_dir: str | os.PathLike[str], tag: str = ""
    ) -> Descriptor:
        """Copy an image (every platform of an index) into an OCI layout."""
        data, media_type, digest = self.get_manifest(ref.repository, ref.reference)
        top = Descriptor(media_type, digest, len(data))
        with LayoutWriter(layout_dir) as writer:
            self._pull_into(writer, ref.repository, data, media_type, digest)
            writer.commit([(tag or ref.tag or "latest", top)])
        return top

    def _pull_into(
        self, writer: LayoutWriter, repo: str, data: bytes, media_type: str, digest: str
    ) -> None:
        doc = parse_manifest_or_index(data, media_type)
        if isinstance(doc, Index):
            for child in doc.manifests:
                child_data, child_type, _ = self.get_manifest(repo, child.digest)
                self._pull_into(writer, repo, child_data, child_type, child.digest)
        else:
            wanted = [d for d in [doc.config, *doc.layers] if _is_pushed(d)]

            def fetch(desc: Descriptor) -> None:
                if not writer.has_blob(desc.digest):
                    with self.open_blob(repo, desc) as stream:
                        writer.add_stream(stream, desc)

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(fetch, wanted))
        writer.add_bytes(data, digest)

    def push_image(
        self, layout: Layout, desc: Descriptor, ref: RegistryReference
    ) -> str:
        """Push the image ``desc`` of a layout as ``ref``; returns its digest."""
        self._push_doc(layout, desc, ref.repository)
        data = layout.read_blob(desc)
        return self.put_manifest(ref.repository, ref.reference, data, desc.media_type)

    def _push_doc(self, layout: Layout, desc: Descriptor, repo: str) -> None:
        data = layout.read_blob(desc)
        doc = parse_manifest_or_index(data, desc.media_type)
        if isinstance(doc, Index):
            for child in doc.manifests:
                self._push_doc(layout, child, repo)
                child_data = layout.read_blob(child)
                self.put_manifest(repo, child.digest, child_data, child.media_type)
            return
        blobs = [d for d in [doc.config, *doc.layers] if _is_pushed(d)]

        def push(blob: Descriptor) -> None:
            self.push_blob_file(repo, blob_path(layout.root, blob.digest), blob)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(push, blobs))


class _VerifiedBlob(VerifyingReader):
    """A verifying reader that closes its download when used as a context."""

    def __enter__(self) -> _VerifiedBlob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def readable(self) -> bool:
        return True


class _BlobStream:
    """A blob download as a file-like object, resumed with Range on errors."""

    def __init__(self, client: RegistryClient, repository: str, digest: str) -> None:
        self._client = client
        self._path = f"/v2/{repository}/blobs/{digest}"
        self._scope = _scope(repository, "pull")
        self._offset = 0
        self._buffer = b""
        self._resumes = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._eof = False

    def _open(self) -> None:
        headers = {"Range": f"bytes={self._offset}-"} if self._offset else {}
        response = self._client.request(
            "GET", self._path, self._scope, headers=headers, stream=True
        )
        try:
            self._client.check(response, 206 if self._offset else 200)
        except BaseException:
            response.close()
            raise
        self._response = response
        self._chunks = response.iter_bytes(_STREAM_CHUNK)

    def _next_chunk(self) -> bytes:
        while True:
            if self._chunks is None:
                self._open()
            assert self._chunks is not None
            try:
                chunk = next(self._chunks, b"")
            except httpx.TransportError as exc:
                self.close()
                self._resumes += 1
                if self._resumes > 5:
                    raise _transient(f"download of {self._path} kept failing") from exc
                log.warning(
                    "blob_download_resume path=%s offset=%d", self._path, self._offset
                )
                continue
            self._offset += len(chunk)
            return chunk

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buffer) < n):
            chunk = self._next_chunk()
            if not chunk:
                self._eof = True
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = None
        self._chunks = None


class RangeReader:
    """Random access to one remote blob: ``size`` and ``read_at(offset, size)``."""

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        digest: str,
        size: int | None = None,
    ) -> None:
        self._client = client
        self._repository = repository
        self.digest = digest
        if size is None:
            size = client.blob_size(repository, digest)
            if size is None:
                raise DistributionError(
                    "BLOB_UNKNOWN", f"blob {digest} is not in {repository}", 404
                )
        self.size = size

    def read_at(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0:
            raise ValueError("offset and size must not be negative")
        size = min(size, self.size - offset)
        return self._client.read_range(self._repository, self.digest, offset, size)


class RegistryImageSource:
    """A repository as the converter's image source."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        data, media_type, _ = self.client.get_manifest(self.repository, reference)
        return data, media_type

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        return self.client.open_blob(self.repository, desc)

    def range_reader(self, desc: Descriptor) -> RangeReader:
        return RangeReader(self.client, self.repository, desc.digest, desc.size)


class RegistryImageSink:
    """A repository as the converter's image sink.

    ``mount_from`` names repositories of the same registry whose blobs
    :meth:`mount_blob` may link instead of uploading them again.
    """

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        mount_from: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.repository = repository
        self.mount_from = mount_from

    def has_blob(self, digest: str) -> bool:
        return self.client.blob_size(self.repository, digest) is not None

    def put_blob_stream(self, stream: BinaryIO, desc: Descriptor) -> None:
        self.client.push_blob_stream(self.repository, stream, desc)

    def put_blob_file(self, path: Path, desc: Descriptor) -> None:
        self.client.push_blob_file(self.repository, path, desc)

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        return self.client.put_manifest(self.repository, reference, data, media_type)

    def mount_blob(self, desc: Descriptor) -> bool:
        return any(
            self.client.mount_blob(self.repository, desc.digest, source)
            for source in self.mount_from
            if source != self.repository
        )


def credentials_for(host: str) -> tuple[str, str]:
    """User and password for ``host``: ``ARTIFACTD_REGISTRY_USERNAME``/``_PASSWORD``,
    else the ``auths`` of containers' auth.json or Docker's config.json."""
    user = os.environ.get("ARTIFACTD_REGISTRY_USERNAME", "")
    if user:
        return user, os.environ.get("ARTIFACTD_REGISTRY_PASSWORD", "")
    candidates = [
        os.environ.get("REGISTRY_AUTH_FILE", ""),
        str(
            Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"))
            / "containers/auth.json"
        ),
        str(Path.home() / ".docker" / "config.json"),
    ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            auths = json.loads(Path(candidate).read_text()).get("auths", {})
        except (OSError, ValueError, AttributeError):
            continue
        entry = auths.get(host) or auths.get(f"https://{host}") or {}
        encoded = entry.get("auth") if isinstance(entry, dict) else None
        if encoded:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            return user, password
    return "", ""


def client_for(ref: RegistryReference) -> RegistryClient:
    user, password = credentials_for(ref.host)
    return RegistryClient(ref.host, username=user, password=password)


def open_registry_source(ref: RegistryReference) -> RegistryImageSource:
    """The source for ``docker://HOST/REPO``, with :func:`credentials_for` the host."""
    return RegistryImageSource(client_for(ref), ref.repository)


def open_registry_sink(
    ref: RegistryReference, mount_from: tuple[str, ...] = ()
) -> RegistryImageSink:
    """The sink for ``docker://HOST/REPO``; blobs of the ``mount_from``
    repositories on the same host are mounted rather than uploaded again."""
    return RegistryImageSink(client_for(ref), ref.repository, mount_from)


def _scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


def _is_pushed(desc: Descriptor) -> bool:
    return desc.media_type not in mt.NOT_DISTRIBUTED_LAYER_TYPES and not desc.extra.get(
        "urls"
    )


def _next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("link", "")
    match = re.match(r'^\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    return match.group(1) if match else None


def _slice(chunks: Iterator[bytes], offset: int, size: int) -> bytes:
    out = bytearray()
    position = 0
    for chunk in chunks:
        end = position + len(chunk)
        if end > offset:
            out += chunk[max(0, offset - position) :]
        position = end
        if len(out) >= size:
            break
    return bytes(out[:size])


__all__ = [
    "RangeReader",
    "RegistryClient",
    "RegistryImageSink",
    "RegistryImageSource",
    "credentials_for",
    "open_registry_sink",
    "open_registry_source",
]
