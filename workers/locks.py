"""Per-conversation and per-pair locks: redis-py's `Lock`, each with a TTL, taken in a fixed order.

A busy lock never blocks a worker for long: after `wait` seconds `LockBusy` is raised and the job is
retried later. Locks are always taken in sorted key order, so two jobs needing the same locks cannot
deadlock; a job that finds it needs one more lock (the holder of a pair) takes it with the same
bounded wait. A lease can still expire (a stalled process): jobs call `refresh()` before each Twilio
write, and correctness never rests on the lock alone (see `workers/participants.py`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

import redis
from redis.exceptions import LockError

from workers import metrics


class LockBusy(Exception):
    """Another job holds a lock this job needs; retry later."""


class LockLost(Exception):
    """A lock's lease expired before the job finished with it; retry from the start."""


class Locks:
    """The locks one job holds; use as a context manager."""

    def __init__(self, connection: redis.Redis, ttl: float, wait: float):
        self.redis = connection
        self.ttl = ttl
        self.wait = wait
        self._held: dict[str, redis.lock.Lock] = {}
        self.waited = 0.0

    def acquire(self, names: Iterable[str]) -> None:
        for name in sorted(set(names) - set(self._held)):
            lock = self.redis.lock(name, timeout=self.ttl, blocking_timeout=self.wait)
            started = time.monotonic()
            acquired = lock.acquire()
            waited = time.monotonic() - started
            self.waited += waited
            metrics.LOCK_WAIT_SECONDS.observe(waited)
            if not acquired:
                self.release()
                raise LockBusy(name)
            self._held[name] = lock

    def refresh(self) -> None:
        """Give every held lock a full TTL again; `LockLost` if one expired meanwhile."""
        for name, lock in self._held.items():
            try:
                lock.reacquire()
            except LockError:
                raise LockLost(name) from None

    def release(self) -> None:
        for lock in self._held.values():
            with contextlib.suppress(LockError):  # expired: nothing to give back
                lock.release()
        self._held.clear()

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
