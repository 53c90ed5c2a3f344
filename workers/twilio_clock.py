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
"""Seconds between two writes of the offset to Redis by one process (sooner when it moves)."""
JUMP = 2.0
"""Seconds by which Twilio's clock must seem to move back before the offset follows it."""
READ_EVERY = 1.0
"""Seconds a web process reuses the published offset before it reads it again."""


class TwilioClock:
    def __init__(self, offset: float = 0.0):
        self._offset = offset
        self._observed = False
        self._lock = threading.Lock()
        self._published_at = float("-inf")
        self._published_offset = float("nan")

    def now(self) -> float:
        """Epoch seconds on Twilio's clock."""
        return time.time() + self.offset

    @property
    def offset(self) -> float:
        with self._lock:
            return self._offset

    def from_host(self, host_time: float) -> float:
        """A moment of this host's clock (`time.time()`), on Twilio's."""
        return host_time + self.offset

    def observe(self, twilio_time: float, received_at: float | None = None) -> None:
        """Twilio answered at `twilio_time` (a `Date` header: whole seconds). A `Date` is up to a
        second behind the moment it was written, so the offset keeps the largest seen, which
        also keeps it steady from one answer to the next; a fall of more than JUMP seconds is
        Twilio's clock really moving back (an emulator reset), and is taken as it is."""
        received_at = time.time() if received_at is None else received_at
        offset = twilio_time - received_at
        with self._lock:
            if offset > self._offset or offset < self._offset - JUMP or not self._observed:
                self._offset = offset
            self._observed = True

    def publish(self, connection: redis.Redis, force: bool = False) -> None:
        """Share the offset with this deployment's web processes: every 30 s, and at once when it
        moved by a second or more (an emulator's clock jumps)."""
        now, offset = time.monotonic(), self.offset
        moved = abs(offset - self._published_offset) >= 1.0
        if not force and not moved and now - self._published_at < PUBLISH_EVERY:
            return
        self._published_at, self._published_offset = now, offset
        connection.set(keys.twilio_clock(), repr(offset))


class PublishedTwilioClock(TwilioClock):
    """Twilio's clock for a process that never calls Twilio (the web side): the offset the
    workers published, re-read from Redis at most every second (the host's own clock until one
    has been published, or while Redis does not answer)."""

    def __init__(self, connection: redis.Redis):
        super().__init__()
        self.connection = connection
        self._read_at = float("-inf")

    def now(self) -> float:
        if time.monotonic() - self._read_at >= READ_EVERY:
            self._read_at = time.monotonic()
            try:
                raw = self.connection.get(keys.twilio_clock())
            except redis.RedisError:
                raw = None
            if raw:
                with self._lock:
                    self._offset = float(raw)
        return super().now()
