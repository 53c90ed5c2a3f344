"""Putting jobs on the queue: retries with jittered backoff, timeouts, de-duplication by job id.

One `JobQueue` is used by the web app (webhooks and API requests) and by jobs that enqueue other
jobs. Payloads are JSON (RQ's JSONSerializer): nothing is ever unpickled from Redis. Job names and
ids come from `workers/job_catalog.py`. A job with an id costs one round trip (`workers/ingest.py`):
its id is remembered for DEDUP_TTL by a compact key, and the job itself, once finished, only for
its result TTL.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from workers import keys, metrics
from workers.ingest import Ingest
from workers.settings import Settings

DEDUP_TTL = 24 * 3600
"""Seconds a job id is remembered after its enqueue (the de-duplication window)."""
RESULT_TTL = 600
"""Seconds a finished job and its result are kept (a client's poll, the console's job page); a
conflict keeps what asking again needs in its own record (`failures.record_conflict`)."""
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
        self.ingest = Ingest(connection, self.rq)

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
        """Enqueue `func(**kwargs)`; returns (job, created). With a `job_id`, nothing is enqueued if
        that id was enqueued within DEDUP_TTL or its job still exists (`enqueue_once`)."""
        if job_id:
            created = self.enqueue_once(
                func, kwargs, kind=kind, job_id=job_id, delay=delay, meta=meta, timeout=timeout
            )
            # The job as Redis holds it (a second round trip; a webhook needs only the id and
            # calls `enqueue_once`); gone already (finished and expired) is a bare job of that id.
            found = self.fetch(job_id)
            return found or Job(
                job_id, connection=self.connection, serializer=JSONSerializer
            ), created
        options = self._options(func, kwargs, kind, meta)
        started = time.perf_counter()
        try:
            rq_options = dict(
                kwargs=kwargs,
                job_timeout=int(timeout or self.settings.job_timeout),
                result_ttl=options["result_ttl"],
                failure_ttl=FAILURE_TTL,
                # RQ refuses Retry(max=0): no retries is no Retry at all.
                retry=Retry(max=len(options["intervals"]), interval=options["intervals"])
                if options["intervals"]
                else None,
                meta=options["meta"],
                description=options["description"],
            )
            if delay > 0:
                return self.rq.enqueue_in(timedelta(seconds=delay), func, **rq_options), True
            return self.rq.enqueue(func, **rq_options), True
        finally:
            metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)

    def enqueue_once(
        self,
        func: str,
        kwargs: dict,
        *,
        kind: str,
        job_id: str,
        delay: float = 0,
        meta: dict | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Enqueue `func(**kwargs)` as job `job_id` in one round trip, unless that id was enqueued
        within DEDUP_TTL or its job still exists; True if it was enqueued."""
        options = self._options(func, kwargs, kind, meta)
        started = time.perf_counter()
        try:
            return self.ingest.enqueue(
                func,
                kwargs,
                job_id=job_id,
                window=DEDUP_TTL,
                timeout=int(timeout or self.settings.job_timeout),
                failure_ttl=FAILURE_TTL,
                run_at=time.time() + delay if delay > 0 else None,
                **options,
            )
        finally:
            metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)

    def _options(self, func: str, kwargs: dict, kind: str, meta: dict | None) -> dict:
        return {
            "result_ttl": RESULT_TTL,
            "intervals": backoff_intervals(self.settings.max_retries),
            "meta": {"kind": kind, "enqueued_at": time.time(), **(meta or {})},  # RQ moves its own
            "description": f"{kind} {kwargs.get('conversation_sid', '')}".strip(),
        }

    def fetch(self, job_id: str) -> Job | None:
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
