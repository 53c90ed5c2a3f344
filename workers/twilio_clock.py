"""Twilio's clock, as this process last saw it.

Idleness ("no activity for 6 hours") and ordering ("this request is older than Twilio's last
change") are measured on the clock that stamped the conversation, not on the host's: every answer
from Twilio carries a `Date` header, and the offset between it and the local clock is kept here.
One object per process, given to whatever needs the time (the gateway updates it).

The workers also publish the offset in Redis (`publish`), so the web side, which never calls
Twilio, can stamp an app's request on Twilio's clock too (`PublishedTwilioClock`).
"""

from __future__ import annotations

import threading
import time

import redis

from workers import keys

PUBLISH_EVERY = 30.0
"""Seconds between two writes of the offset to Redis by one process."""


class TwilioClock:
    def __init__(self, offset: float = 0.0):
        self._offset = offset
        self._lock = threading.Lock()
        self._published_at = 0.0

    def now(self) -> float:
        """Epoch seconds on Twilio's clock."""
        return time.time() + self.offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def observe(self, twilio_time: float, received_at: float | None = None) -> None:
        """Twilio answered at `twilio_time` (a `Date` header: whole seconds)."""
        received_at = time.time() if received_at is None else received_at
        with self._lock:
            self._offset = twilio_time - received_at

    def publish(self, connection: redis.Redis, force: bool = False) -> None:
        """Share the offset with this deployment's web processes (at most every 30 s)."""
        now = time.monotonic()
        if not force and now - self._published_at < PUBLISH_EVERY:
            return
        self._published_at = now
        connection.set(keys.twilio_clock(), repr(self.offset))


class PublishedTwilioClock(TwilioClock):
    """Twilio's clock for a process that never calls Twilio (the web side): the offset the
    workers published, re-read from Redis at most every 30 s (the host's own clock until one has
    been published, or while Redis does not answer)."""

    def __init__(self, connection: redis.Redis):
        super().__init__()
        self.connection = connection
        self._read_at = float("-inf")

    def now(self) -> float:
        if time.monotonic() - self._read_at >= PUBLISH_EVERY:
            self._read_at = time.monotonic()
            try:
                raw = self.connection.get(keys.twilio_clock())
            except redis.RedisError:
                raw = None
            if raw:
                with self._lock:
                    self._offset = float(raw)
        return super().now()
