"""Push events: in-process subscribers, and webhooks in Distribution's envelope."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from artifactd.errors import RegistryError
from artifactd.oci import mediatypes as mt
from artifactd.registry.events import (
    ENVELOPE_MEDIA_TYPE,
    PushEvent,
    WebhookNotifier,
    events_from_envelope,
)
from tests.registry.conftest import LiveRegistry, _ServerThread, start_embedded
from tests.registry.test_api import image_manifest, put_manifest


class _Receiver:
    """A webhook endpoint on loopback that records what it is sent; the first
    ``fail_first`` deliveries get a 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append((self.headers["Content-Type"], body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()

    def wait(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)


def test_every_manifest_push_raises_one_event(embedded: LiveRegistry) -> None:
    seen: list[PushEvent] = []
    embedded.service.registry.events.subscribe(seen.append)
    with httpx.Client(
        base_url=embedded.url, auth=(embedded.user, embedded.password)
    ) as http:
        data = image_manifest(http, "team/app")
        digest = put_manifest(http, "team/app", "v1", data).headers[
            "docker-content-digest"
        ]
        put_manifest(http, "team/app", digest, data)
    assert [(e.repository, e.tag, e.digest, e.media_type) for e in seen] == [
        ("team/app", "v1", digest, mt.OCI_MANIFEST),
        ("team/app", "", digest, mt.OCI_MANIFEST),
    ]
    assert seen[0].actor == embedded.user


def test_failing_subscriber_does_not_fail_the_push(embedded: LiveRegistry) -> None:
    def broken(event: PushEvent) -> None:
        raise RuntimeError("subscriber bug")

    embedded.service.registry.events.subscribe(broken)
    with httpx.Client(
        base_url=embedded.url, auth=(embedded.user, embedded.password)
    ) as http:
        data = image_manifest(http, "team/app")
        assert put_manifest(http, "team/app", "v1", data).status_code == 201


def test_webhook_delivers_distribution_envelope(tmp_path: Path) -> None:
    with _Receiver(fail_first=1) as receiver:
        service, app = start_embedded(tmp_path / "data", webhook_endpoints=receiver.url)
        service.notifier._backoff = 0.05
        with _ServerThread(app, service.settings.port):
            url = f"http://127.0.0.1:{service.settings.port}"
            with httpx.Client(
                base_url=url,
                auth=("LTAItestkey000000001", "test-secret-0123456789abcdef"),
            ) as http:
                data = image_manifest(http, "team/app")
                digest = put_manifest(http, "team/app", "v1", data).headers[
                    "docker-content-digest"
                ]
            receiver.wait(1)
    assert len(receiver.bodies) == 1, "the failed first delivery is retried once"
    content_type, body = receiver.bodies[0]
    assert content_type == ENVELOPE_MEDIA_TYPE
    event = json.loads(body)["events"][0]
    assert event["action"] == "push"
    assert event["target"]["repository"] == "team/app"
    assert event["target"]["tag"] == "v1"
    assert event["target"]["digest"] == digest
    assert event["target"]["mediaType"] == mt.OCI_MANIFEST
    assert event["target"]["size"] == len(data)
    parsed = events_from_envelope(body)
    assert [(e.repository, e.tag, e.digest) for e in parsed] == [
        ("team/app", "v1", digest)
    ]


def test_envelope_parsing_skips_blobs_and_pulls_and_rejects_garbage() -> None:
    body = json.dumps(
        {
            "events": [
                {"action": "pull", "target": {"mediaType": mt.OCI_MANIFEST}},
                {
                    "action": "push",
                    "target": {
                        "mediaType": "application/octet-stream",
                        "repository": "a/b",
                        "digest": "sha256:" + "0" * 64,
                    },
                },
                {
                    "action": "push",
                    "target": {
                        "mediaType": mt.DOCKER_MANIFEST,
                        "repository": "a/b",
                        "digest": "sha256:" + "1" * 64,
                        "tag": "t",
                        "size": 5,
                    },
                },
            ]
        }
    ).encode()
    events = events_from_envelope(body)
    assert [(e.repository, e.tag, e.size) for e in events] == [("a/b", "t", 5)]
    with pytest.raises(RegistryError):
        events_from_envelope(b"[1, 2]")


def test_webhook_stop_gives_up_on_a_dead_endpoint() -> None:
    notifier = WebhookNotifier(
        ["http://127.0.0.1:9/unreachable"], attempts=3, backoff=0.01
    )
    notifier.start()
    notifier(PushEvent("a/b", "t", "sha256:" + "2" * 64, mt.OCI_MANIFEST))
    started = time.monotonic()
    notifier.stop(timeout=5)
    assert time.monotonic() - started < 5
