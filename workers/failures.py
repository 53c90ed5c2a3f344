"""Failed jobs and conflicts: what failed and why, and replaying it through the same serialized path.

A job records each failed attempt in its meta (time, Twilio code or HTTP status, message, the
Twilio operation), so an operator sees every attempt, not only the last, and a job retrying now
(`retry`: "attempt 3 of 9, next at ..."). Replaying requeues the same job (same id, same
arguments): it takes the same locks and the same ledger path, so an operation that already took
effect ends `already_present`, never as a duplicate. Conflicts are business answers: kept in their
own list, never retried by themselves.

One job is described the same way wherever it is shown (`GET /api/v1/jobs`, `/jobs/<id>`, the
CLI's `--json`): a `JobSummary` (the list's items), and `show` adds the details to the same
fields. Times are ISO 8601 UTC (`logs.iso_time`).
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from workers import keys
from workers.addresses import mask, mask_text
from workers.logs import iso_time
from workers.runtime import Runtime

MAX_ATTEMPTS_KEPT = 20
MAX_CONFLICTS_KEPT = 10_000
ERROR_KEPT = 500
"""Characters of an error message kept per attempt."""
UNSETTLED = ("queued", "started", "scheduled")
"""States in which a job that failed an attempt is still being retried."""


def reported_code(error: BaseException) -> int:
    """The code an operator filters on: Twilio's, else the HTTP status Twilio answered with, else
    the error's own (a busy lock, a closed conversation); 0 when there is none (no answer)."""
    return int(getattr(error, "reported_code", None) or getattr(error, "code", 0) or 0)


def record_attempt(job: Job, error: BaseException) -> dict:
    """Called by the job wrapper when an attempt raises: kept in the job's meta, and returned."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    attempt = {
        "at": time.time(),
        "code": reported_code(error),
        "message": mask_text(message)[:ERROR_KEPT],
        "operation": getattr(error, "operation", "") or "",
        "error": mask_text(str(error) or type(error).__name__)[:ERROR_KEPT],
        "run": int(job.meta.get("replays", 0)),
    }
    failures = int(job.meta.get("failures", len(job.meta.get("attempts", []))))
    job.meta["attempts"] = [*job.meta.get("attempts", []), attempt][-MAX_ATTEMPTS_KEPT:]
    job.meta["failures"] = failures + 1
    job.meta["error_code"] = attempt["code"]
    job.save_meta()
    return attempt


def this_run(job: Job) -> list[dict]:
    """The failed attempts since the job was last enqueued afresh (its first enqueue or a replay)."""
    run = int(job.meta.get("replays", 0))
    return [a for a in job.meta.get("attempts", []) if int(a.get("run", 0)) == run]


def attempts_allowed(job: Job, failed: int) -> int:
    """How many attempts this run may make in all, `failed` of them having failed so far (RQ
    counts its retries left down as they are used)."""
    return failed + 1 + max(0, job.retries_left or 0)


def record_conflict(
    rt: Runtime, job_id: str, outcome: dict, *, function: str = "", arguments: dict | None = None
) -> None:
    """Keep a conflict outcome with what asking again needs: the job's `function` and
    `arguments` (full numbers: shown masked, never listed), so a policy retry does not need the
    job, which RQ lets go with its short result TTL. The most recent MAX_CONFLICTS_KEPT are kept."""
    entry = {"job_id": job_id, "at": time.time(), **outcome}
    if function:
        entry["request"] = {"function": function, "arguments": dict(arguments or {})}
    pipe = rt.connection.pipeline()
    pipe.zadd(keys.conflicts(), {json.dumps(entry, sort_keys=True): entry["at"]})
    pipe.zremrangebyrank(keys.conflicts(), 0, -MAX_CONFLICTS_KEPT - 1)
    pipe.execute()


def conflicts(rt: Runtime, since: float = 0.0) -> list[dict]:
    """The conflict outcomes as recorded (`job_id`, epoch `at`, the outcome's fields, and the
    `request` that asking again replays; records older than it have none), oldest first."""
    raw = rt.connection.zrangebyscore(keys.conflicts(), since or "-inf", "+inf")
    return [json.loads(item) for item in raw]


def conflict(rt: Runtime, job_id: str) -> dict | None:
    """The most recent conflict recorded for the job, or None."""
    found = [entry for entry in conflicts(rt) if entry.get("job_id") == job_id]
    return found[-1] if found else None


def masked_arguments(arguments: dict) -> dict:
    """A job's arguments as operators see them: the numbers masked (every `...address`: the
    customer's, the proxy's, a group's projected one)."""
    return {
        name: mask(value) if name.endswith("address") and isinstance(value, str) else value
        for name, value in arguments.items()
    }


def conflict_items(rt: Runtime, since: float = 0.0) -> list[dict]:
    """The conflicts as the API and the CLI's JSON show them: the job's `id`, the outcome's
    fields, `at` in ISO 8601 (the recorded request stays out: it holds full numbers)."""
    items = []
    for entry in conflicts(rt, since):
        rest = {k: v for k, v in entry.items() if k not in ("job_id", "at", "request")}
        items.append({"id": entry.get("job_id", ""), **rest, "at": iso_time(entry.get("at"))})
    return items


@dataclass(frozen=True)
class JobSummary:
    """One job in a list (the failed jobs); `show` gives the same fields and more."""

    id: str
    kind: str
    conversation_sid: str
    pair: str  # masked
    status: str
    code: int
    """The last failed attempt's Twilio code (the HTTP status when Twilio gave none); 0: none."""
    operation: str
    """The Twilio call that failed (`participant.create`, `service.list`, ...), if one did."""
    error: str
    attempt_count: int
    enqueued_at: float
    """The first enqueue (epoch seconds): RQ's own `enqueued_at` moves with each retry."""
    failed_at: float
    """When the job failed for good (epoch seconds); 0 while it has not."""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["enqueued_at"] = iso_time(self.enqueued_at)
        data["failed_at"] = iso_time(self.failed_at)
        return data


def _registry(rt: Runtime) -> FailedJobRegistry:
    return rt.queue.rq.failed_job_registry


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def _status(job: Job, refresh: bool = True) -> str:
    status = job.get_status(refresh=refresh)
    return str(getattr(status, "value", status) or "")


def _summary(job: Job, status: str) -> JobSummary:
    kwargs = job.kwargs or {}
    pair = ""
    if kwargs.get("address"):
        pair = f"{mask(kwargs['address'])}|{mask(kwargs.get('proxy_address', ''))}"
    elif kwargs.get("identity"):
        pair = f"identity {kwargs['identity']}"
    attempts = job.meta.get("attempts", [])
    last = attempts[-1] if attempts else {}
    failed = int(job.meta.get("failures", len(attempts)))
    return JobSummary(
        id=job.id,
        kind=job.meta.get("kind", job.func_name),
        conversation_sid=kwargs.get("conversation_sid", ""),
        pair=pair,
        status=status,
        code=int(job.meta.get("error_code", 0) or 0),
        operation=last.get("operation", ""),
        error=last.get("error", "") or (_last_line(job) if status == "failed" else ""),
        attempt_count=_attempt_count(failed, status),
        enqueued_at=float(job.meta.get("enqueued_at") or _epoch(job.enqueued_at)),
        failed_at=_epoch(job.ended_at) if status == "failed" else 0.0,
    )


def _attempt_count(failed: int, status: str) -> int:
    """Attempts made: the failed ones, and the one that succeeded; a job that failed without
    recording an attempt (its worker died) made one."""
    if status == "finished":
        return failed + 1
    if status == "failed":
        return max(failed, 1)
    return failed


def _last_line(job: Job) -> str:
    result = job.latest_result()
    if result is not None and result.exc_string:
        return mask_text(result.exc_string.strip().splitlines()[-1])
    return ""


def failed(
    rt: Runtime, conversation: str = "", code: int = 0, since: float = 0.0
) -> list[JobSummary]:
    """Failed jobs, newest first, filtered by conversation SID, code (Twilio's, or the HTTP status
    when Twilio gave none) and failure time."""
    registry = _registry(rt)
    entries = rt.connection.zrange(registry.key, 0, -1, withscores=True)
    ids = [entry.decode() for entry, _ in entries]
    jobs = Job.fetch_many(ids, connection=rt.connection, serializer=JSONSerializer)
    found = []
    for job in jobs:
        if job is None:
            continue
        item = _summary(job, "failed")
        if conversation and item.conversation_sid != conversation:
            continue
        if code and item.code != code:
            continue
        if since and item.failed_at < since:
            continue
        found.append(item)
    return sorted(found, key=lambda item: item.failed_at, reverse=True)


def retry_state(rt: Runtime, job: Job, status: str) -> dict | None:
    """A retry in flight: the job failed attempts of this run and waits for (`scheduled`, with
    `next_at`), is queued for, or is running (`started`) its next one; None otherwise."""
    failed_attempts = this_run(job)
    if status not in UNSETTLED or not failed_attempts:
        return None
    attempt = len(failed_attempts) + 1
    next_at = 0.0
    if status == "scheduled":
        try:
            next_at = _epoch(rt.queue.rq.scheduled_job_registry.get_scheduled_time(job))
        except NoSuchJobError:
            next_at = 0.0
    last = failed_attempts[-1]
    return {
        "attempt": attempt,
        "of": attempts_allowed(job, len(failed_attempts)),
        "state": {"scheduled": "waiting", "queued": "queued", "started": "running"}[status],
        "next_at": iso_time(next_at),
        "last_code": last.get("code", 0),
        "last_error": last.get("error", ""),
    }


def retrying(rt: Runtime, limit: int = 20) -> list[dict]:
    """Jobs with a retry in flight (waiting for their next attempt or running it), soonest first."""
    queue = rt.queue.rq
    ids = queue.scheduled_job_registry.get_job_ids() + queue.started_job_registry.get_job_ids()
    found = []
    for job in Job.fetch_many(ids, connection=rt.connection, serializer=JSONSerializer):
        if job is None:
            continue
        status = _status(job, refresh=False)
        retry = retry_state(rt, job, status)
        if retry is not None:
            summary = _summary(job, status).to_dict()
            found.append({**summary, "retry": retry})
    found.sort(key=lambda item: item["retry"]["next_at"] or "")
    return found[:limit]


def _attempts(job: Job, status: str, outcome) -> list[dict]:
    """Every attempt made: each failed one, and the one that succeeded."""
    kept = job.meta.get("attempts", [])
    first = int(job.meta.get("failures", len(kept))) - len(kept) + 1
    attempts = [
        {
            "number": first + index,
            "at": iso_time(a.get("at")),
            "status": "failed",
            "code": a.get("code", 0),
            "message": a.get("message", a.get("error", "")),
            "operation": a.get("operation", ""),
            "error": a.get("error", ""),
        }
        for index, a in enumerate(kept)
    ]
    if status == "finished":
        name = outcome.get("outcome", "done") if isinstance(outcome, dict) else "done"
        attempts.append(
            {
                "number": first + len(kept),
                "at": iso_time(job.ended_at),
                "status": "finished",
                "outcome": name,
            }
        )
    return attempts


def show(rt: Runtime, job_id: str) -> dict | None:
    """Everything about one job: its summary's fields, arguments (numbers masked), each attempt,
    a retry in flight, the outcome or the last exception."""
    job = rt.queue.fetch(job_id)
    if job is None:
        return None
    kwargs = masked_arguments(job.kwargs or {})
    status = _status(job)
    result = job.latest_result()
    if status == "finished" and result is None:
        # RQ marks the job finished a moment before its result is readable: not done yet, here.
        status = "started"
    outcome = result.return_value if result is not None and status == "finished" else None
    return {
        **_summary(job, status).to_dict(),
        "function": job.func_name,
        "arguments": kwargs,
        "attempts": _attempts(job, status, outcome),
        "retry": retry_state(rt, job, status),
        "outcome": outcome,
        "exception": mask_text(result.exc_string) if result and result.exc_string else "",
        "replays": int(job.meta.get("replays", 0)),
        "ended_at": iso_time(job.ended_at),
    }


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut between words (a SID is never cut in two)."""
    if len(text) <= width:
        return text
    short = textwrap.shorten(text, width, placeholder=" ...")
    return short if short != "..." else text[: width - 4] + " ..."  # one word longer than width


def replay(rt: Runtime, job_id: str) -> str:
    """Requeue one failed job with a fresh retry budget: `requeued`, `not_failed` or `missing`."""
    job = rt.queue.fetch(job_id)
    if job is None:
        return "missing"
    registry = _registry(rt)
    if job_id not in registry:
        return "not_failed"
    job.retries_left = rt.settings.max_retries
    job.meta["replays"] = int(job.meta.get("replays", 0)) + 1
    job.save_meta()
    try:
        registry.requeue(job)
    except Exception:  # noqa: BLE001 - InvalidJobOperation: another operator replayed it first
        return "not_failed"
    return "requeued"
