"""RQ bookkeeping for the benchmarks: bulk enqueueing with Bindery's job options, waiting for jobs,
and reading their timestamps back.

Rates come from the jobs' own timestamps (first enqueued to last ended), so polling does not blur
them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from workers import keys
from workers.queue import FAILURE_TTL, RESULT_TTL, backoff_intervals
from workers.settings import Settings

DONE = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED)


def queue(connection: redis.Redis) -> Queue:
    return Queue(keys.QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def enqueue_bulk(
    connection: redis.Redis, settings: Settings, func: str, kwargs_list: list[dict], kind: str
) -> list[str]:
    """Enqueue `func(**kwargs)` for each kwargs in one pipeline, with the options `JobQueue`
    gives every job (timeout, TTLs, retries, meta), so that only the function differs."""
    q = queue(connection)
    datas = [
        Queue.prepare_data(
            func,
            kwargs=kwargs,
            timeout=int(settings.job_timeout),
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
            retry=Retry(max=settings.max_retries, interval=backoff_intervals(settings.max_retries)),
            meta={"kind": kind},
            description=f"{kind} {kwargs.get('conversation_sid', '')}".strip(),
        )
        for kwargs in kwargs_list
    ]
    with connection.pipeline() as pipe:
        jobs = q.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return [job.id for job in jobs]


def wait(connection: redis.Redis, job_ids: list[str], timeout: float) -> list[Job]:
    """The jobs, once each has finished or failed (a retried job counts when it is done)."""
    pending = list(job_ids)
    deadline = time.monotonic() + timeout
    while True:
        pending = [
            job_id
            for job_id, status in zip(pending, _statuses(connection, pending), strict=True)
            if status not in DONE
        ]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(job_ids)} jobs not done after {timeout}s")
        time.sleep(0.1)
    jobs = Job.fetch_many(job_ids, connection=connection, serializer=JSONSerializer)
    return [job for job in jobs if job is not None]


def _statuses(connection: redis.Redis, job_ids: list[str]) -> list[str | None]:
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "status")
        return [s.decode() if s else None for s in pipe.execute()]


def epoch(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def timing(jobs: list[Job]) -> dict:
    """Rate over the whole batch (first enqueued to last ended), each job's time from enqueued to
    ended (`latencies`, queueing included) and from started to ended (`service`)."""
    enqueued = [epoch(j.enqueued_at) for j in jobs]
    started = [epoch(j.started_at) for j in jobs]
    ended = [epoch(j.ended_at) for j in jobs]
    span = max(ended) - min(enqueued) if jobs else 0.0
    return {
        "span_s": span,
        "rate": len(jobs) / span if span > 0 else 0.0,
        "latencies": [e - q for q, e in zip(enqueued, ended, strict=True)],
        "service": [e - s for s, e in zip(started, ended, strict=True)],
    }


def outcomes(jobs: list[Job]) -> dict[str, int]:
    """How the jobs ended: each finished job's `outcome`, or its status."""
    counts: dict[str, int] = {}
    for job in jobs:
        status = job.get_status(refresh=False)
        if status == JobStatus.FINISHED:
            result = job.return_value()
            name = result.get("outcome", "finished") if isinstance(result, dict) else "finished"
        else:
            name = str(getattr(status, "value", status))
        counts[name] = counts.get(name, 0) + 1
    return counts
