"""The webhook sender: signed requests to the configured pre- and post-event URLs.

Requests are form-encoded POSTs (or GETs with the parameters in the query string when the
configuration's Method is GET), signed in `X-Twilio-Signature` with the auth token as Twilio signs
them: over the full URL plus the sorted POST parameters, or over the full URL alone for a GET.
Each carries `I-Twilio-Idempotency-Token`, one token per event, unless the fault
`omit_idempotency_token` is on.

Pre-events are sent synchronously by the request that causes them. Post-events are queued and
sent by background threads, off the request path; one conversation always goes to the same thread,
so its events arrive in the order they happened.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from emulator.stats import Stats
from emulator.webhook_events import Event

log = logging.getLogger(__name__)

USER_AGENT = "TwilioProxy/1.1"


@dataclass(frozen=True)
class Target:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class PreOutcome:
    """What the pre-event receivers said: a rejection, or changes to apply (maybe none)."""

    rejected_status: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return self.rejected_status is not None


class WebhookSender:
    """Signs and sends webhooks; counts them in Stats."""

    def __init__(
        self,
        auth_token: str,
        stats: Stats,
        timeout: float,
        threads: int,
        *,
        idempotency_token: Callable[[], bool] = lambda: True,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._idempotency_token = idempotency_token
        self._stats = stats
        self._timeout = timeout
        self._queues: list[queue.Queue[tuple[int, Event, list[Target]] | None]] = [
            queue.Queue() for _ in range(max(1, threads))
        ]
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._generation = 0

    # -- post-events --------------------------------------------------------------------------

    def post(self, event: Event, targets: list[Target]) -> None:
        """Queue a post-event; never blocks."""
        self._start()
        shard = zlib.crc32((event.conversation_sid or "").encode()) % len(self._queues)
        self._queues[shard].put((self._generation, event, targets))

    def flush(self, timeout: float) -> bool:
        """Wait until every queued post-event was sent; False when `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        while any(q.unfinished_tasks for q in self._queues):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def clear(self) -> None:
        """Drop the post-events not sent yet (on reset)."""
        with self._lock:
            self._generation += 1

    def stop(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for q in self._queues:
            if workers:
                q.put(None)
        for worker in workers:
            worker.join(timeout=self._timeout + 1)

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            for number, q in enumerate(self._queues):
                worker = threading.Thread(
                    target=self._work, args=(q,), name=f"emulator-webhooks-{number}", daemon=True
                )
                worker.start()
                self._workers.append(worker)

    def _work(self, q: queue.Queue[tuple[int, Event, list[Target]] | None]) -> None:
        with requests.Session() as session:
            while True:
                item = q.get()
                try:
                    if item is None:
                        return
                    generation, event, targets = item
                    if generation != self._generation:
                        continue  # queued before a reset
                    for target in targets:
                        self._send_post(session, target, event, generation)
                finally:
                    q.task_done()

    def _send_post(
        self, session: requests.Session, target: Target, event: Event, generation: int
    ) -> None:
        try:
            with self._request(session, target, event) as response:
                ok = 200 <= response.status_code < 300
        except requests.RequestException as error:
            log.info("post-event %s to %s failed: %s", event.event_type, target.url, error)
            ok = False
        if generation == self._generation:  # a reset meanwhile cleared the stats
            self._stats.webhook("sent" if ok else "failed")

    # -- pre-events ---------------------------------------------------------------------------

    def pre(self, event: Event, targets: list[Target]) -> PreOutcome:
        """Send a pre-event and wait: 4xx/5xx rejects the action; no answer lets it through."""
        changes: dict[str, Any] = {}
        with requests.Session() as session:
            for target in targets:
                try:
                    with self._request(session, target, event) as response:
                        status, body = response.status_code, response.content
                except requests.RequestException as error:
                    log.info("pre-event %s to %s failed: %s", event.event_type, target.url, error)
                    self._stats.webhook("failed")
                    continue
                if status >= 400:
                    self._stats.webhook("rejected")
                    return PreOutcome(rejected_status=status)
                if not 200 <= status < 300:
                    self._stats.webhook("failed")
                    continue
                self._stats.webhook("sent")
                changes.update(_changes(body))
        return PreOutcome(changes=changes)

    # -- one request --------------------------------------------------------------------------

    def _request(
        self, session: requests.Session, target: Target, event: Event
    ) -> requests.Response:
        headers = {"User-Agent": USER_AGENT}
        if self._idempotency_token():
            headers["I-Twilio-Idempotency-Token"] = event.token
        if target.method.upper() == "GET":
            separator = "&" if "?" in target.url else "?"
            url = target.url + separator + urlencode(event.params)
            headers["X-Twilio-Signature"] = self._validator.compute_signature(url, {})
            return session.get(url, headers=headers, timeout=self._timeout, allow_redirects=False)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["X-Twilio-Signature"] = self._validator.compute_signature(target.url, event.params)
        return session.post(
            target.url,
            data=urlencode(event.params),
            headers=headers,
            timeout=self._timeout,
            allow_redirects=False,
        )


def _changes(body: bytes) -> dict[str, Any]:
    """A pre-event answer's JSON object (the fields to change), or nothing."""
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
