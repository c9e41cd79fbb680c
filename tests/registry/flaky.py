"""A proxy on loopback that misbehaves on purpose, between a client and a
registry: busy answers, downloads and chunk uploads cut off midway. It also
records every request it forwards."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FlakyProxy:
    """Forwards to ``upstream``; answers the first ``busy`` requests with 503
    (one with 429), and cuts the first ``cut`` blob downloads after half.

    ``cut_patches`` cuts chunk uploads: the first PATCH sends its first
    ``cut_patches[0]`` body bytes on to the registry, then both connections
    are dropped, and so on for the next ones. The proxy waits until the
    registry holds those bytes before the client sees the cut, as a client
    on a slow link would.
    """

    def __init__(
        self,
        upstream: str,
        busy: int = 0,
        cut: int = 0,
        cut_patches: tuple[int, ...] = (),
    ) -> None:
        self.busy, self.cut = busy, cut
        self.cut_patches = list(cut_patches)
        self.upstream = httpx.URL(upstream)
        self.seen: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append(
                    (
                        self.command,
                        self.path,
                        self.headers.get("Range")
                        or self.headers.get("Content-Range", ""),
                    )
                )
                if self.command == "PATCH" and proxy.cut_patches:
                    proxy.forward_cut(self, body, proxy.cut_patches.pop(0))
                    self.close_connection = True
                    return
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

    def forward_cut(
        self, request: BaseHTTPRequestHandler, body: bytes, keep: int
    ) -> None:
        """Send the request with only ``keep`` bytes of its body, then hang up."""
        head = [f"{request.command} {request.path} HTTP/1.1"]
        head.append(f"Host: {self.upstream.host}:{self.upstream.port}")
        head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
        with socket.create_connection((self.upstream.host, self.upstream.port)) as up:
            up.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + body[:keep])
        expected = f"0-{max(keep - 1, 0)}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = httpx.get(
                str(self.upstream.join(request.path)),
                headers={"Authorization": request.headers.get("Authorization", "")},
            )
            if status.headers.get("range") == expected:
                return
            time.sleep(0.02)
        raise AssertionError(f"the registry never held {keep} bytes of the upload")

    def __enter__(self) -> FlakyProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
