"""Per-conversation and per-pair locks: redis-py's `Lock`, each with a TTL, taken in a fixed order.

A busy lock never blocks a worker: a job that may wait (a participant-add, post-event, state
change or timer run by a worker, see `workers/waiters.py`) joins the line of the first lock it finds held and leaves its worker, and
whoever lets that lock go wakes the first in line. Any other job waits at most `wait` seconds, then
`LockBusy` is raised and the job is retried later. Locks are taken in sorted key order, so two jobs
needing the same locks cannot deadlock; a job that finds it needs one more lock (the holder of a
pair) takes it with the bounded wait.

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

from workers import keys, metrics, waiters
from workers.errors import LockBusy, LockLost
from workers.ledger import Fence
from workers.waiters import Parked, Waiter

__all__ = ["LockBusy", "LockLost", "Locks", "Parked"]


class _Lock(redis.lock.Lock):
    """redis-py's Lock, taken and let go by scripts that also keep its line: the taker leaves the
    line; a taker that may wait joins it when the lock is held; letting go takes the first waiter
    off it. Renewal (`reacquire`) is redis-py's own."""

    _take_script = None
    _release_script = None

    def __init__(self, *args, waiter: Waiter | None = None, line_ttl_ms: int = 60_000, **kw):
        super().__init__(*args, **kw)
        cls = type(self)
        if cls._take_script is None:
            cls._take_script = self.redis.register_script(waiters.TAKE)
            cls._release_script = self.redis.register_script(waiters.RELEASE)
        self.waiter = waiter
        self.line_ttl_ms = line_ttl_ms
        self.place = 0  # in the line, once joined
        self.woken = ""  # the waiter taken off the line on release

    def do_acquire(self, token) -> bool:
        waiter = self.waiter
        join = "" if waiter is None else "front" if waiter.waited_before else "back"
        result = self._take_script(
            keys=[self.name, keys.lock_line(self.name)],
            args=[
                token,
                int(self.timeout * 1000),
                waiter.job_id if waiter else "",
                join,
                self.line_ttl_ms,
            ],
            client=self.redis,
        )
        self.place = max(0, int(result))
        return int(result) == 0

    def do_release(self, expected_token) -> None:
        first = self._release_script(
            keys=[self.name, keys.lock_line(self.name)], args=[expected_token], client=self.redis
        )
        if first is None:
            raise redis.exceptions.LockNotOwnedError(
                "Cannot release a lock that's no longer owned", lock_name=self.name
            )
        self.woken = first.decode() if isinstance(first, bytes) else str(first)


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
        self._place = 0
        self._waker: waiters.Waker | None = None
        self.woken: list[tuple[str, str]] = []
        """(lock, job id) of each waiter this job's releases woke, and what became of it."""

    def acquire(self, names: Iterable[str], waiter: Waiter | None = None) -> None:
        """Take every lock in `names` (in sorted order), or none: `LockBusy` gives back all. With a
        `waiter` and no lock held yet, a busy lock is not waited for: the waiter joins its line,
        gives back what it took and `Parked` is raised."""
        may_wait = waiter is not None and not self._held
        for name in sorted(set(names) - set(self._held)):
            lock = self._take(name, waiter if may_wait else None)
            if lock is not None:
                continue
            self.release()
            if may_wait and self._place:
                raise Parked(name, self._place)
            raise LockBusy(name)
        self._watch()

    def try_acquire(self, name: str) -> bool:
        """One more lock, if it is free within the wait; the locks already held stay held."""
        taken = name in self._held or self._take(name) is not None
        self._watch()
        return taken

    def _take(self, name: str, waiter: Waiter | None = None) -> _Lock | None:
        # thread_local=False: the watchdog thread renews the lease with the same token.
        lock = _Lock(
            self.redis,
            name,
            timeout=self.ttl,
            blocking_timeout=self.wait,
            thread_local=False,
            waiter=waiter,
            line_ttl_ms=waiters.line_ttl_ms(self.ttl),
        )
        started = time.monotonic()
        # A waiter tries once: the lock is taken, or it is in its line (one script).
        acquired = lock.acquire(blocking=waiter is None)
        metrics.LOCK_WAIT_SECONDS.observe(time.monotonic() - started)
        self._place = lock.place
        if not acquired:
            return None
        with self._guard:
            self._held[name] = lock
        return lock

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
            released = list(self._held.values())
            self._held.clear()
        first_waiters = []
        for lock in released:
            with contextlib.suppress(LockError):  # expired: nothing to give back
                lock.release()
            if lock.woken:
                first_waiters.append((lock.name, lock.woken))
        for name, job_id in first_waiters:
            self._wake(name, job_id)

    def _wake(self, name: str, job_id: str) -> None:
        if self._waker is None:
            self._waker = waiters.Waker(self.redis)
        try:
            job_id, result = self._waker.wake_line(name, job_id)
        except RedisError:
            result = "failed"  # its fallback wakes it
        self.woken.append((name, f"{job_id}:{result}"))

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _token(lock: redis.lock.Lock) -> str:
    token = lock.local.token
    return token.decode() if isinstance(token, bytes) else str(token)
