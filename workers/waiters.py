"""Waiting for a busy lock without holding a worker: the job waits in the lock's line, and the
holder wakes the first in line as it lets the lock go.

A job (a participant-add, a post-event, a state change, a timer's close) that finds its first
lock held does not wait inside its worker. It joins the lock's line (`keys.lock_line`: a Redis
list; the same script that finds the lock held adds the job, so nobody joins the line of a lock
just let go) and leaves its worker as a job RQ *schedules* to run again after `fallback_after` seconds: it returns `rq.Retry`, RQ's own
way for a job to ask to run later, which is no failed attempt (Bindery records none, and RQ's
`retries_left` for failures is untouched). The script that lets the lock go takes the first job
id off its line, and the holder moves that job from RQ's scheduled registry to the front of the
queue (`Waker`): the next free worker runs it at once, and it takes its locks itself, as any job
does. Each job stays its own RQ job: its own result, attempts, retries and failed-registry entry.

Why nothing is lost or run twice:

- The line only makes things faster. A waiting job is in RQ's scheduled registry; if nobody wakes
  it (its holder died, and the lock's lease runs out within `BINDERY_LOCK_TTL`), RQ's scheduler
  runs it at the fallback, and it takes the lock or waits again, keeping its place in the line.
- A wake is one transaction (WATCH on the job's hash): it moves a job only while RQ has it
  scheduled and not about to run it (`DUE_MARGIN`), so a job is never queued twice. A job woken
  while it is still leaving its worker (in line, not yet scheduled) is looked at again for a few
  milliseconds (`PARKING_POLLS`); after that its fallback wakes it.
- The locks keep every guarantee: a woken job takes its locks with its own tokens (the fence), in
  the same order; only the first lock of a job is waited for in a line, never one taken later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis
from redis.exceptions import WatchError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from workers import keys

MAX_PARKS = 1000
"""Times one job may wait in a line; RQ fails it after that ("max retries exceeded")."""
DUE_MARGIN = 2.0
"""Seconds: a waiting job RQ's scheduler runs within this is left to it (moving it as well could
queue it twice)."""
FALLBACK_MIN = 5
"""Seconds a waiting job is scheduled ahead at least, so that a wake is never near RQ's own move."""
PARKING_POLLS = 40
PARKING_POLL_SECONDS = 0.0025
"""A job woken while still leaving its worker is looked at again this often, this many times (at
most 0.1 s: RQ schedules it a few milliseconds after it joined the line)."""
WAKES_PER_RELEASE = 8
"""Job ids a release takes off the line at most, looking for one that is still waiting."""


@dataclass(frozen=True)
class Waiter:
    """The job that may wait in a line: its RQ id, and whether it has waited before (then it goes
    back to the front of the line, the place it was woken from)."""

    job_id: str
    waited_before: bool = False


_waiter: ContextVar[Waiter | None] = ContextVar("bindery_waiter", default=None)


@contextmanager
def waiting_as(job_id: str, waited_before: bool = False) -> Iterator[None]:
    """Within this, the job `job_id` waits for a busy first lock in its line (no id: it does not)."""
    token = _waiter.set(Waiter(job_id, waited_before) if job_id else None)
    try:
        yield
    finally:
        _waiter.reset(token)


def current() -> Waiter | None:
    return _waiter.get()


class Parked(Exception):
    """The job joined a busy lock's line and leaves its worker: not a failure."""

    def __init__(self, lock: str, place: int):
        super().__init__(f"waiting for {lock} ({place} in line)")
        self.lock = lock
        self.place = place


def fallback_after(lock_ttl: float) -> int:
    """Seconds after which a waiting job runs though nobody woke it: by then the lease of a holder
    that died has run out."""
    return max(math.ceil(lock_ttl) + 1, FALLBACK_MIN)


def retry(lock_ttl: float) -> Retry:
    """What a waiting job returns to RQ: run me again at the fallback, unless woken before."""
    return Retry(max=MAX_PARKS, interval=fallback_after(lock_ttl))


def line_ttl_ms(lock_ttl: float) -> int:
    """A line outlives its last join by this (its waiters are in RQ's scheduled registry anyway)."""
    return int(max(60.0, 4 * fallback_after(lock_ttl)) * 1000)


# -- the scripts the locks take and let go with (see `workers/locks.py`) ------------------------

TAKE = """
-- KEYS: lock, line; ARGV: token, ttl ms, waiter id, join ('' | 'back' | 'front'), line ttl ms
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] ~= '' then redis.call('lrem', KEYS[2], 0, ARGV[3]) end
  return 0
end
if ARGV[4] == '' or ARGV[3] == '' then return -1 end
local place = redis.call('lpos', KEYS[2], ARGV[3])
if not place then
  if ARGV[4] == 'front' then
    redis.call('lpush', KEYS[2], ARGV[3])
    place = 0
  else
    place = redis.call('rpush', KEYS[2], ARGV[3]) - 1
  end
end
redis.call('pexpire', KEYS[2], ARGV[5])
return place + 1
"""
"""Take the lock (0, and the taker leaves the line), or find it held (-1), or, for a taker that
may wait, join its line once (its place, from 1)."""

RELEASE = """
-- KEYS: lock, line; ARGV: token
if redis.call('get', KEYS[1]) ~= ARGV[1] then return false end
redis.call('del', KEYS[1])
return redis.call('lpop', KEYS[2]) or ''
"""
"""Let the lock go if it is still this token's, and take the first waiter off its line (nil: not
owned; '': nobody waits)."""

NEXT = """
-- KEYS: lock, line
if redis.call('exists', KEYS[1]) == 1 then return '' end
return redis.call('lpop', KEYS[2]) or ''
"""
"""The next waiter, while the lock is free (someone who took it will wake the line in turn)."""


# -- waking --------------------------------------------------------------------------------------


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class Waker:
    """Moves waiting jobs from RQ's scheduled registry to the front of their queue."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection
        self._queues: dict[str, Queue] = {}
        self._next = connection.register_script(NEXT)

    def wake_line(self, lock: str, first: str) -> tuple[str, str]:
        """Wake `first` (just taken off `lock`'s line); if it is gone, the next, while the lock is
        free. The last job looked at, and what became of it."""
        job_id, result = first, "gone"
        for _ in range(WAKES_PER_RELEASE):
            result = self.wake(job_id)
            if result != "gone":
                return job_id, result
            following = _text(self._next(keys=[lock, keys.lock_line(lock)]))
            if not following:
                return job_id, result
            job_id = following
        return job_id, result

    def wake(self, job_id: str) -> str:
        """`woken` (moved to the front of its queue); `awake` (queued, running or done already),
        `due` (RQ's scheduler runs it within `DUE_MARGIN`), `leaving` (still leaving its worker
        after the polls: its fallback wakes it) or `gone` (no such job)."""
        job_key = Job.key_for(job_id)
        for _ in range(PARKING_POLLS + 1):
            with self.connection.pipeline() as pipe:
                try:
                    pipe.watch(job_key)
                    status = _text(pipe.hget(job_key, "status"))
                    if not status:
                        return "gone"
                    if status == JobStatus.STARTED.value:
                        pipe.reset()
                        time.sleep(PARKING_POLL_SECONDS)
                        continue
                    if status != JobStatus.SCHEDULED.value:
                        return "awake"
                    try:
                        job = Job.fetch(job_id, self.connection, serializer=JSONSerializer)
                    except NoSuchJobError:
                        return "gone"
                    queue = self._queue(job.origin or keys.QUEUE_NAME)
                    registry = queue.scheduled_job_registry.key
                    due = pipe.zscore(registry, job_id)
                    if due is None:
                        return "awake"  # RQ's scheduler is moving it
                    if due <= time.time() + DUE_MARGIN:
                        return "due"
                    job.started_at = None
                    job.ended_at = None
                    pipe.multi()
                    pipe.zrem(registry, job_id)
                    queue.enqueue_job(job, pipeline=pipe, at_front=True)
                    pipe.execute()
                    return "woken"
                except WatchError:
                    continue
        return "leaving"

    def _queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.connection, serializer=JSONSerializer)
        return self._queues[name]
