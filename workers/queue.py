"""Putting jobs on the queue: retries with jittered backoff, timeouts, de-duplication by job id.

One `JobQueue` is used by the web app (webhooks and API requests) and by jobs that enqueue other
jobs. Payloads are JSON (RQ's JSONSerializer): nothing is ever unpickled from Redis. Job names and
ids come from `workers/job_catalog.py`.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from workers import keys, metrics
from workers.settings import Settings

DEDUP_TTL = 24 * 3600
"""Seconds a finished job (and so its de-duplication id) is kept."""
FAILURE_TTL = 30 * 24 * 3600
"""Seconds a failed job is kept for operators to inspect and replay."""
BACKOFF_BASE = 1
"""Seconds before the first retry; doubled for each one after, up to BACKOFF_CAP."""
BACKOFF_CAP = 60


def backoff_intervals(retries: int, rng: random.Random | None = None) -> list[int]:
    """Exponential backoff with jitter (x0.5 to x1.5), so failed jobs do not retry in lockstep."""
    rng = rng or random
    return [
        max(1, round(min(BACKOFF_CAP, BACKOFF_BASE * 2**i) * rng.uniform(0.5, 1.5)))
        for i in range(retries)
    ]


class JobQueue:
    def __init__(self, connection: redis.Redis, settings: Settings):
        self.connection = connection
        self.settings = settings
        self.rq = Queue(keys.QUEUE_NAME, connection=connection, serializer=JSONSerializer)

    def enqueue(
        self,
        func: str,
        kwargs: dict,
        *,
        kind: str,
        job_id: str | None = None,
        delay: float = 0,
        meta: dict | None = None,
        timeout: float | None = None,
    ) -> tuple[Job, bool]:
        """Enqueue `func(**kwargs)`; returns (job, created). With a `job_id`, a job that already
        exists under it is returned instead of a second one (atomically, by RQ's unique enqueue)."""
        options = dict(
            kwargs=kwargs,
            job_id=job_id,
            job_timeout=int(timeout or self.settings.job_timeout),
            result_ttl=DEDUP_TTL,
            failure_ttl=FAILURE_TTL,
            # RQ refuses Retry(max=0): no retries is no Retry at all.
            retry=Retry(
                max=self.settings.max_retries, interval=backoff_intervals(self.settings.max_retries)
            )
            if self.settings.max_retries > 0
            else None,
            meta={"kind": kind, "enqueued_at": time.time(), **(meta or {})},  # RQ moves its own
            description=f"{kind} {kwargs.get('conversation_sid', '')}".strip(),
        )
        started = time.perf_counter()
        try:
            if delay > 0:
                job = self.rq.enqueue_in(
                    timedelta(seconds=delay), func, unique=bool(job_id), **options
                )
            else:
                job = self.rq.enqueue(func, unique=bool(job_id), **options)
        except DuplicateJobError:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer), False
        finally:
            metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)
        return job, True

    def fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
