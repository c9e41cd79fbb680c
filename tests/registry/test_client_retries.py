"""The client rides out a flaky network: 5xx/429 answers are retried with
backoff, and a download cut off midway resumes where it stopped.

A small proxy on loopback sits between the client and the embedded registry
and misbehaves on purpose for the first requests it sees.
"""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from artifactd.errors import RegistryError
from artifactd.oci import mediatypes as mt
from artifactd.oci.model import Descriptor
from artifactd.registry.client import RegistryClient
from tests.registry.conftest import LiveRegistry


class FlakyProxy:
    """Forwards to ``upstream``; answers the first ``busy`` requests with 503
    (one with 429), and cuts the first ``cut`` blob downloads after half."""

    def __init__(self, upstream: str, busy: int = 0, cut: int = 0) -> None:
        self.busy, self.cut = busy, cut
        self.seen: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append(
                    (self.command, self.path, self.headers.get("Range", ""))
                )
                if proxy.busy > 0:
                    proxy.busy -= 1
                    status = 429 if proxy.busy == 0 else 503
                    self.send_response(status)
                    self.send_header("Retry-After", "0") if status == 429 else None
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                response = httpx.request(
                    self.command, upstream + self.path, headers=headers, content=body
                )
                data = response.content
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in (
                        "transfer-encoding",
                        "connection",
                        "content-length",
                    ):
                        self.send_header(key, value)
                length = response.headers.get("content-length", "0")
                self.send_header(
                    "Content-Length",
                    length if self.command == "HEAD" else str(len(data)),
                )
                self.end_headers()
                if self.command == "HEAD":
                    return
                if proxy.cut > 0 and "/blobs/sha256:" in self.path and len(data) > 1000:
                    proxy.cut -= 1
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def layer(data: bytes) -> Descriptor:
    return Descriptor(
        mt.OCI_LAYER_GZIP, "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
    )


def test_busy_registry_is_retried_until_it_answers(embedded: LiveRegistry) -> None:
    data = os.urandom(10_000)
    with (
        FlakyProxy(embedded.url, busy=3) as proxy,
        RegistryClient(
            proxy.host, username=embedded.user, password=embedded.password, backoff=0.01
        ) as client,
    ):
        client.push_blob_bytes("team/app", data, layer(data))
        assert client.blob_size("team/app", layer(data).digest) == len(data)
    statuses_retried = [path for _, path, _ in proxy.seen[:4]]
    assert len(set(statuses_retried)) == 1, "the same request was sent again"


def test_retries_are_bounded(embedded: LiveRegistry) -> None:
    with (
        FlakyProxy(embedded.url, busy=100) as proxy,
        RegistryClient(proxy.host, retries=2, backoff=0.01) as client,
    ):
        with pytest.raises(RegistryError) as info:
            client.list_tags("team/app")
        assert getattr(info.value, "transient", False)
    assert len(proxy.seen) == 3


def test_cut_download_resumes_with_range(embedded: LiveRegistry) -> None:
    data = os.urandom(3 << 20)
    with RegistryClient(
        embedded.host, username=embedded.user, password=embedded.password
    ) as direct:
        direct.push_blob_bytes("team/app", data, layer(data))
    with (
        FlakyProxy(embedded.url, cut=1) as proxy,
        RegistryClient(
            proxy.host, username=embedded.user, password=embedded.password, backoff=0.01
        ) as client,
    ):
        with client.open_blob("team/app", layer(data)) as stream:
            assert stream.read() == data
    ranges = [
        r for method, path, r in proxy.seen if method == "GET" and "/blobs/" in path
    ]
    # The resumed request starts after what arrived whole, not from byte 0.
    resumed_at = int(ranges[-1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(data) // 2
