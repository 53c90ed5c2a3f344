"""Per-conversation and per-pair locks: redis-py's `Lock`, each with a TTL, taken in a fixed order.

A busy lock never blocks a worker for long: after `wait` seconds `LockBusy` is raised and the job is
retried later. Locks are taken in sorted key order, so two jobs needing the same locks cannot
deadlock; a job that finds it needs one more lock (the holder of a pair) takes it with the same
bounded wait.

While a job holds its locks, a watchdog thread renews their leases every third of the TTL, so a slow
Twilio call (slower than the TTL) does not let a second job in. A lease still expires when the
process stalls or dies, which is what the TTL is for: `refresh()` before each Twilio write stops a
job that lost a lease, and `fence()` hands the ledger the tokens its writes check, so a job whose
lease ran out cannot write its older view over a newer one (see `workers/ledger.py`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable

import redis
from redis.exceptions import LockError, RedisError

from workers import metrics
from workers.errors import LockBusy, LockLost
from workers.ledger import Fence

__all__ = ["LockBusy", "LockLost", "Locks"]


class Locks:
    """The locks one job holds; use as a context manager. `renew=False` turns the watchdog off
    (the in-process tests expire leases themselves)."""

    def __init__(self, connection: redis.Redis, ttl: float, wait: float, renew: bool = True):
        self.redis = connection
        self.ttl = ttl
        self.wait = wait
        self.renew = renew
        self._held: dict[str, redis.lock.Lock] = {}
        self._guard = threading.Lock()  # the job's thread and the watchdog share `_held`
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.lost: str = ""

    def acquire(self, names: Iterable[str]) -> None:
        """Take every lock in `names` (in sorted order), or none: `LockBusy` gives back all."""
        for name in sorted(set(names) - set(self._held)):
            if not self._take(name):
                self.release()
                raise LockBusy(name)
        self._watch()

    def try_acquire(self, name: str) -> bool:
        """One more lock, if it is free within the wait; the locks already held stay held."""
        taken = name in self._held or self._take(name)
        self._watch()
        return taken

    def _take(self, name: str) -> bool:
        # thread_local=False: the watchdog thread renews the lease with the same token.
        lock = self.redis.lock(
            name, timeout=self.ttl, blocking_timeout=self.wait, thread_local=False
        )
        started = time.monotonic()
        acquired = lock.acquire()
        metrics.LOCK_WAIT_SECONDS.observe(time.monotonic() - started)
        if acquired:
            with self._guard:
                self._held[name] = lock
        return bool(acquired)

    def _watch(self) -> None:
        if self.renew and self._watchdog is None and self._held:
            self._watchdog = threading.Thread(target=self._renew, daemon=True, name="lock-watchdog")
            self._watchdog.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._guard:
                for name, lock in self._held.items():
                    try:
                        lock.reacquire()
                    except (LockError, RedisError):
                        self.lost = self.lost or name

    def refresh(self) -> None:
        """Give every held lock a full TTL again; `LockLost` if one expired meanwhile."""
        if self.lost:
            raise LockLost(self.lost)
        with self._guard:
            for name, lock in self._held.items():
                try:
                    lock.reacquire()
                except LockError:
                    raise LockLost(name) from None

    def fence(self) -> Fence:
        """The held locks' keys and tokens, for the ledger's fenced writes."""
        with self._guard:
            names = sorted(self._held)
            tokens = [_token(self._held[name]) for name in names]
        return Fence(tuple(names), tuple(tokens))

    def holds(self, name: str) -> bool:
        return name in self._held

    def release(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()
        with self._guard:
            for lock in self._held.values():
                with contextlib.suppress(LockError):  # expired: nothing to give back
                    lock.release()
            self._held.clear()

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _token(lock: redis.lock.Lock) -> str:
    token = lock.local.token
    return token.decode() if isinstance(token, bytes) else str(token)
