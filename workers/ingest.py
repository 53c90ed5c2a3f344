"""A unique job enqueued in one Redis round trip: de-duplicated and written exactly as RQ writes it.

RQ's own unique enqueue costs two round trips (its queue-set pipeline, then its Lua script) and
keys de-duplication on the job's hash, so every finished job had to be kept as long as the
de-duplication window. Here one script, registered once per process (EVALSHA), does it all:

1. `SET bindery:seen:<digest of the job id> 1 NX EX <window>`: a compact key (`keys.job_seen`,
   72 bytes by `MEMORY USAGE`) is the de-duplication window, so the job's hash can expire with
   its short result TTL;
2. a job hash that still exists under that id (one enqueued by an older release, or a failed one
   kept for replay) is a duplicate too, as it is for RQ, and so is the id's key as releases
   before `job_seen` wrote it (`bindery:dedup:<job id>`, gone a window after an upgrade);
3. the job's hash, with the fields RQ's `Job.to_dict()` writes for the installed RQ version;
4. the queue in `rq:queues` and the id pushed on `rq:queue:bindery` (or, with a delay, put in
   RQ's scheduled registry, as `Queue.enqueue_in` does).

The fields every job shares (timeout, TTLs, retries, callbacks, origin) are taken once per process
from a job RQ itself builds (`Queue.create_job`), so they follow RQ; only the per-job fields (data,
description, meta, times, retry intervals) are made per enqueue. `tests/workers/test_ingest.py`
compares the hash with the one RQ's `enqueue(unique=True)` writes, field by field.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import redis
from rq import Queue, Retry
from rq.job import JobStatus
from rq.utils import utcformat

from workers import keys

SCRIPT = """
if redis.call('EXISTS', KEYS[5]) == 1 then
    return 0
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
    return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
    return 0
end
redis.call('HSET', KEYS[2], unpack(ARGV, 5))
redis.call('SADD', KEYS[4], ARGV[4])
if ARGV[3] == '' then
    redis.call('RPUSH', KEYS[3], ARGV[1])
else
    redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
end
return 1
"""
# KEYS: de-duplication key, job hash, queue list (or scheduled registry), rq:queues, the
# de-duplication key as older releases named it.
# ARGV: job id, window (s), score ('' to push now), queue key, then the hash's fields and values.

_PER_JOB = ("created_at", "enqueued_at", "data", "description", "meta", "retry_intervals")
"""Fields made per enqueue; every other field comes from the process's template."""


class Ingest:
    """Writes unique jobs for one RQ queue; built once per process (see `JobQueue`)."""

    def __init__(self, connection: redis.Redis, queue: Queue):
        self.queue = queue
        self.script = connection.register_script(SCRIPT)
        self._templates: dict[tuple, list] = {}

    def _template(self, timeout: int, result_ttl: int, failure_ttl: int, retries: int) -> list:
        """The shared fields, flattened for HSET, as RQ writes them for a job with these options."""
        key = (timeout, result_ttl, failure_ttl, retries)
        found = self._templates.get(key)
        if found is None:
            model = self.queue.create_job(
                "workers.jobs.model",
                kwargs={},
                timeout=timeout,
                result_ttl=result_ttl,
                failure_ttl=failure_ttl,
                retry=Retry(max=retries, interval=[1] * retries) if retries else None,
                job_id="model",
            )
            fields = model.to_dict(include_meta=False)
            found = []
            for name, value in fields.items():
                if name in _PER_JOB or name == "status" or value is None:
                    continue
                found += [name, value if isinstance(value, bytes | str) else str(value)]
            self._templates[key] = found
        return found

    def enqueue(
        self,
        func: str,
        kwargs: dict,
        *,
        job_id: str,
        window: int,
        timeout: int,
        result_ttl: int,
        failure_ttl: int,
        intervals: list[int],
        meta: dict,
        description: str,
        run_at: float | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
    ) -> bool:
        """Write the job unless `job_id` was seen within `window` seconds; True if it was written.
        `run_at` (epoch seconds) schedules it instead of queueing it now."""
        moment = utcformat(now())
        fields = [
            "created_at",
            moment,
            "data",
            # JSONSerializer.dumps of (func, instance, args, kwargs), compressed as RQ's to_dict does
            zlib.compress(json.dumps([func, None, [], kwargs]).encode()),
            "description",
            description,
            "meta",
            json.dumps(meta).encode(),
        ]
        if intervals:
            fields += ["retry_intervals", json.dumps(intervals)]
        if run_at is None:
            fields += ["enqueued_at", moment, "status", JobStatus.QUEUED.value]
            target, score = self.queue.key, ""
        else:
            fields += ["status", JobStatus.SCHEDULED.value]
            target, score = self.queue.scheduled_job_registry.key, str(int(run_at))
        fields += self._template(timeout, result_ttl, failure_ttl, len(intervals))
        written = self.script(
            keys=[
                keys.job_seen(job_id),
                self.queue.job_class.key_for(job_id),
                target,
                _QUEUES,
                keys.dedup(job_id),
            ],
            args=[job_id, window, score, self.queue.key, *fields],
        )
        return written == 1


_QUEUES = Queue.redis_queues_keys
"""`rq:queues`: the set of queue keys RQ's workers and CLI list."""
