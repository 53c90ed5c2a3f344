"""What became of jobs: recent outcomes for the console's charts, and the state of a given list of
jobs (those a replay requeued).

RQ keeps a finished job's result only briefly (10 minutes), so each finished job also counts its
outcome in a per-minute hash kept a day (`keys.outcome_counts`): the chart reads those, whatever
RQ has let go. The state of given jobs is read from RQ (their hash and latest `Result`) in one
pipelined round trip; RQ's registries are never cleaned up from here (the workers do that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from workers import keys
from workers.runtime import Runtime

OUTCOMES_KEPT = 25 * 3600
"""Seconds a minute's outcome counts are kept: the console's longest span (24 h), and an hour."""
MINUTE = 60

log = logging.getLogger(__name__)
UNSETTLED = ("queued", "started", "scheduled", "deferred")
"""Job states that will still change by themselves."""


@dataclass(frozen=True)
class Finished:
    at: float  # epoch seconds: the start of the minute the jobs finished in
    outcome: str  # the jobs' `outcome` ("added", "already_present", ...), or "done"
    count: int = 1


def _outcome(value) -> str:
    if isinstance(value, dict) and isinstance(value.get("outcome"), str):
        return value["outcome"]
    return "done"


def _latest_results(rt: Runtime, job_ids: list[str], with_status: bool) -> list[tuple]:
    pipe = rt.connection.pipeline(transaction=False)
    for job_id in job_ids:
        if with_status:
            pipe.hget(Job.key_for(job_id), "status")
        pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)
    replies = pipe.execute()
    step = 2 if with_status else 1
    rows = []
    for index, job_id in enumerate(job_ids):
        status = replies[index * step] if with_status else None
        entries = replies[index * step + step - 1]
        result = None
        if entries:
            result_id, payload = entries[0]
            result = Result.restore(
                job_id,
                result_id.decode(),
                payload,
                connection=rt.connection,
                serializer=JSONSerializer,
            )
        rows.append((job_id, status.decode() if status else "", result))
    return rows


def record_outcome(connection: redis.Redis, outcome: str, at: float) -> None:
    """Count one finished job's outcome in its minute. Best effort: the job is done either way."""
    key = keys.outcome_counts(int(at // MINUTE * MINUTE))
    try:
        pipe = connection.pipeline(transaction=False)
        pipe.hincrby(key, outcome, 1)
        pipe.expire(key, OUTCOMES_KEPT)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count the outcome %s: Redis unreachable", outcome)


def finished_since(rt: Runtime, since: float, until: float) -> list[Finished]:
    """How many jobs finished with each outcome, minute by minute, from `since` to `until`."""
    minutes = range(int(since // MINUTE * MINUTE), int(until) + 1, MINUTE)
    pipe = rt.connection.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(keys.outcome_counts(minute))
    return [
        Finished(float(minute), outcome.decode(), int(count))
        for minute, counts in zip(minutes, pipe.execute(), strict=True)
        for outcome, count in counts.items()
    ]


def states_of(rt: Runtime, job_ids: list[str]) -> dict[str, str]:
    """Each job's outcome if it finished ("added", ...), else its RQ status ("queued", "failed",
    ...), or "gone" once RQ no longer has it."""
    states = {}
    for job_id, status, result in _latest_results(rt, job_ids, with_status=True):
        if not status:
            states[job_id] = "gone"
        elif status == "finished" and result is not None:
            states[job_id] = _outcome(result.return_value)
        else:
            states[job_id] = status
    return states
