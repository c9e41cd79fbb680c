"""Push events: raised for every manifest pushed, consumed in-process or sent out.

:class:`EventBus` calls its subscribers (the build trigger, for one) in the
pushing request's thread, after the manifest is stored and tagged, so a
subscriber can read it at once. :class:`WebhookNotifier` is a subscriber
that posts the same events to HTTP endpoints in CNCF Distribution's
notification envelope (``application/vnd.docker.distribution.events.v1+json``),
from its own thread with retries, so a slow endpoint never slows a push.
:func:`events_from_envelope` reads such an envelope back, so an external
Distribution registry can feed the same consumers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from artifactd.errors import RegistryError

log = logging.getLogger(__name__)

ENVELOPE_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"


@dataclass(frozen=True)
class PushEvent:
    """A manifest was pushed to ``repository`` (with ``tag``, if by tag)."""

    repository: str
    tag: str
    digest: str
    media_type: str
    size: int = 0
    actor: str = ""
    request_host: str = ""
    request_addr: str = ""
    user_agent: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: float = field(default_factory=time.time)

    def to_envelope_event(self, source: str = "") -> dict[str, Any]:
        """This event as one entry of Distribution's ``events`` list."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.timestamp))
        target: dict[str, Any] = {
            "mediaType": self.media_type,
            "size": self.size,
            "digest": self.digest,
            "length": self.size,
            "repository": self.repository,
        }
        if self.request_host:
            target["url"] = (
                f"http://{self.request_host}/v2/{self.repository}"
                f"/manifests/{self.digest}"
            )
        if self.tag:
            target["tag"] = self.tag
        return {
            "id": self.id,
            "timestamp": f"{stamp}.{int(self.timestamp % 1 * 1e6):06d}Z",
            "action": "push",
            "target": target,
            "request": {
                "id": self.id,
                "addr": self.request_addr,
                "host": self.request_host,
                "method": "PUT",
                "useragent": self.user_agent,
            },
            "actor": {"name": self.actor} if self.actor else {},
            "source": {"addr": source, "instanceID": source},
        }


Subscriber = Callable[[PushEvent], object]


class EventBus:
    """In-process publish/subscribe; a failing subscriber never fails a push."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: PushEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception(
                    "event_subscriber_failed repository=%s tag=%s digest=%s",
                    event.repository,
                    event.tag,
                    event.digest,
                )


class WebhookNotifier:
    """Posts push events to endpoints in Distribution's envelope format.

    Events queue in memory (at most ``max_queue``; beyond that the oldest
    are dropped and logged) and go out one envelope per event, each
    endpoint retried with exponential backoff up to ``attempts`` times.
    Events still queued when the service stops are lost: webhooks are a
    best-effort notification, the registry's tags remain the truth.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        headers: dict[str, str] | None = None,
        attempts: int = 5,
        backoff: float = 0.5,
        timeout: float = 10.0,
        max_queue: int = 10_000,
        source: str = "artifactd",
    ) -> None:
        self.endpoints = list(endpoints)
        self._headers = dict(headers or {})
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._source = source
        self._queue: queue.Queue[PushEvent | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __call__(self, event: PushEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("webhook_queue_full dropped=%s", event.digest)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="artifactd-webhooks", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (for up to ``timeout`` seconds), then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._stopping.set()
        self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while True:
                event = self._queue.get()
                if event is None:
                    return
                body = json.dumps(
                    {"events": [event.to_envelope_event(self._source)]}
                ).encode()
                for endpoint in self.endpoints:
                    self._deliver(client, endpoint, body, event)

    def _deliver(
        self, client: httpx.Client, endpoint: str, body: bytes, event: PushEvent
    ) -> None:
        headers = {"Content-Type": ENVELOPE_MEDIA_TYPE, **self._headers}
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                response = client.post(endpoint, content=body, headers=headers)
                if response.status_code < 300:
                    return
                reason = f"status {response.status_code}"
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
            log.warning(
                "webhook_failed endpoint=%s digest=%s attempt=%d reason=%s",
                endpoint,
                event.digest,
                attempt,
                reason,
            )
            if attempt == self._attempts or self._stopping.wait(delay):
                return
            delay *= 2


def events_from_envelope(body: bytes) -> list[PushEvent]:
    """The manifest push events in a Distribution notification envelope.

    Pulls, blob pushes and deletes are skipped; a malformed envelope raises
    :class:`RegistryError` naming what is wrong.
    """
    try:
        envelope = json.loads(body)
        entries = envelope["events"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"not a notification envelope: {exc}") from exc
    if not isinstance(entries, list):
        raise RegistryError("notification envelope 'events' is not a list")
    return [event for entry in entries if (event := _push_event(entry)) is not None]


def _push_event(entry: Any) -> PushEvent | None:
    if not isinstance(entry, dict) or entry.get("action") != "push":
        return None
    target = entry.get("target")
    if not isinstance(target, dict):
        raise RegistryError("notification event lacks 'target'")
    media_type = str(target.get("mediaType", ""))
    if "manifest" not in media_type and "index" not in media_type:
        return None
    try:
        return PushEvent(
            repository=str(target["repository"]),
            tag=str(target.get("tag", "")),
            digest=str(target["digest"]),
            media_type=media_type,
            size=int(target.get("size") or target.get("length") or 0),
            actor=str((entry.get("actor") or {}).get("name", "")),
            id=str(entry.get("id") or uuid.uuid4()),
        )
    except (KeyError, ValueError) as exc:
        raise RegistryError(f"notification event target lacks {exc}") from exc
