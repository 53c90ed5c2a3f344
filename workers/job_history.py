"""What became of jobs, read back from RQ: recent outcomes for the console's charts, and the state
of a given list of jobs (those a replay requeued).

RQ keeps each job's results in a stream (`Result`), and finished jobs in the finished registry for
as long as their result lives (10 minutes for Bindery's jobs, a day for adds). Both are read in one pipelined round trip;
nothing here writes, and RQ's registries are never cleaned up from here (the workers do that).
"""

from __future__ import annotations

from dataclasses import dataclass

from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from workers.runtime import Runtime

FINISHED_SCANNED = 5000
"""Most recent finished jobs read for the outcome chart; older ones are left out (and said so)."""
UNSETTLED = ("queued", "started", "scheduled", "deferred")
"""Job states that will still change by themselves."""


@dataclass(frozen=True)
class Finished:
    at: float  # epoch seconds the result was recorded
    outcome: str  # the job's `outcome` ("added", "already_present", ...), or "done"


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


def finished_since(rt: Runtime, since: float, limit: int = FINISHED_SCANNED) -> tuple[list, bool]:
    """Jobs that finished at or after `since`, newest first, and whether `limit` cut the list short
    (more finished jobs in the window than were read)."""
    registry = rt.queue.rq.finished_job_registry
    ids = registry.get_job_ids(0, limit - 1, desc=True, cleanup=False)
    found = []
    reached_since = False
    for _, _, result in _latest_results(rt, ids, with_status=False):
        if result is None or result.type != Result.Type.SUCCESSFUL:
            continue
        at = result.created_at.timestamp()
        if at < since:
            reached_since = True
            continue
        found.append(Finished(at, _outcome(result.return_value)))
    return found, len(ids) >= limit and not reached_since


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
