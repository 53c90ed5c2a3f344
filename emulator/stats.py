"""Counters the emulator keeps about itself, for `GET /_emulator/stats`."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

WEBHOOK_OUTCOMES = ("sent", "failed", "rejected")


class Stats:
    """Thread-safe counts of REST requests, error answers by Twilio code, webhooks and calls.

    `calls` counts REST calls by operation (`participants.create`), whatever their answer, so a
    benchmark can count the Twilio calls each of its operations made.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests = 0
            self._errors: Counter[int] = Counter()
            self._webhooks: Counter[str] = Counter({outcome: 0 for outcome in WEBHOOK_OUTCOMES})
            self._calls: Counter[str] = Counter()

    def request(self) -> None:
        with self._lock:
            self._requests += 1

    def error(self, code: int) -> None:
        with self._lock:
            self._errors[code] += 1

    def webhook(self, outcome: str) -> None:
        """`sent` (2xx), `failed` (no answer, timeout, or a non-2xx post-event answer) or
        `rejected` (a pre-event answered 4xx or 5xx)."""
        with self._lock:
            self._webhooks[outcome] += 1

    def call(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "errors": {str(code): n for code, n in sorted(self._errors.items())},
                "webhooks": dict(self._webhooks),
                "calls": dict(sorted(self._calls.items())),
            }
