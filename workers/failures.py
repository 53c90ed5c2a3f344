"""Failed jobs and conflicts: what failed and why, and replaying it through the same serialized path.

A job records each failed attempt in its meta (time, error, Twilio code), so an operator sees every
attempt, not only the last. Replaying requeues the same job (same id, same arguments): it takes the
same locks and the same ledger path, so an operation that already took effect ends
`already_present`, never as a duplicate. Conflicts are business answers: kept in their own list,
never retried by themselves.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from workers import keys
from workers.addresses import mask, mask_text
from workers.runtime import Runtime

MAX_ATTEMPTS_KEPT = 20
MAX_CONFLICTS_KEPT = 10_000


def record_attempt(job: Job, error: BaseException) -> None:
    """Called by the job wrapper when an attempt raises: kept in the job's meta."""
    code = getattr(error, "reported_code", None) or getattr(error, "code", 0) or 0
    attempts = job.meta.get("attempts", [])
    attempts.append({"at": time.time(), "error": mask_text(str(error))[:500], "code": code})
    job.meta["attempts"] = attempts[-MAX_ATTEMPTS_KEPT:]
    job.meta["error_code"] = code
    job.save_meta()


def record_conflict(rt: Runtime, job_id: str, outcome: dict) -> None:
    entry = {"job_id": job_id, "at": time.time(), **outcome}
    pipe = rt.connection.pipeline()
    pipe.zadd(keys.conflicts(), {json.dumps(entry, sort_keys=True): entry["at"]})
    pipe.zremrangebyrank(keys.conflicts(), 0, -MAX_CONFLICTS_KEPT - 1)
    pipe.execute()


def conflicts(rt: Runtime, since: float = 0.0) -> list[dict]:
    raw = rt.connection.zrangebyscore(keys.conflicts(), since or "-inf", "+inf")
    return [json.loads(item) for item in raw]


@dataclass(frozen=True)
class FailedJob:
    id: str
    kind: str
    conversation_sid: str
    pair: str  # masked
    code: int
    error: str
    attempts: int
    failed_at: float

    def to_dict(self) -> dict:
        return asdict(self)


def _registry(rt: Runtime) -> FailedJobRegistry:
    return rt.queue.rq.failed_job_registry


def _failed_job(job: Job, failed_at: float) -> FailedJob:
    kwargs = job.kwargs or {}
    pair = ""
    if kwargs.get("address"):
        pair = f"{mask(kwargs['address'])}|{mask(kwargs.get('proxy_address', ''))}"
    elif kwargs.get("identity"):
        pair = f"identity {kwargs['identity']}"
    attempts = job.meta.get("attempts", [])
    last = attempts[-1] if attempts else {}
    return FailedJob(
        id=job.id,
        kind=job.meta.get("kind", job.func_name),
        conversation_sid=kwargs.get("conversation_sid", ""),
        pair=pair,
        code=int(job.meta.get("error_code", 0) or 0),
        error=last.get("error", "") or _last_line(job),
        attempts=len(attempts) or 1,
        failed_at=failed_at,
    )


def _last_line(job: Job) -> str:
    result = job.latest_result()
    if result is not None and result.exc_string:
        return mask_text(result.exc_string.strip().splitlines()[-1])
    return ""


def failed(
    rt: Runtime, conversation: str = "", code: int = 0, since: float = 0.0
) -> list[FailedJob]:
    """Failed jobs, newest first, filtered by conversation SID, Twilio code and failure time."""
    registry = _registry(rt)
    entries = rt.connection.zrange(registry.key, 0, -1, withscores=True)
    ids = [entry.decode() for entry, _ in entries]
    jobs = Job.fetch_many(ids, connection=rt.connection, serializer=JSONSerializer)
    found = []
    for job in jobs:
        if job is None:
            continue
        failed_at = job.ended_at.timestamp() if job.ended_at else 0.0
        item = _failed_job(job, failed_at)
        if conversation and item.conversation_sid != conversation:
            continue
        if code and item.code != code:
            continue
        if since and item.failed_at < since:
            continue
        found.append(item)
    return sorted(found, key=lambda item: item.failed_at, reverse=True)


def show(rt: Runtime, job_id: str) -> dict | None:
    """Everything about one job: arguments (numbers masked), each attempt, the last exception."""
    job = rt.queue.fetch(job_id)
    if job is None:
        return None
    kwargs = dict(job.kwargs or {})
    for name in ("address", "proxy_address"):
        if kwargs.get(name):
            kwargs[name] = mask(kwargs[name])
    status = job.get_status()
    result = job.latest_result()
    if status == "finished" and result is None:
        # RQ marks the job finished a moment before its result is readable: not done yet, here.
        status = "started"
    return {
        "id": job.id,
        "kind": job.meta.get("kind", ""),
        "function": job.func_name,
        "status": getattr(status, "value", status),
        "arguments": kwargs,
        "attempts": [
            {**a, "at": datetime.fromtimestamp(a["at"], UTC).isoformat()}
            for a in job.meta.get("attempts", [])
        ],
        "twilio_code": int(job.meta.get("error_code", 0) or 0),
        "exception": mask_text(result.exc_string) if result and result.exc_string else "",
        "error": _last_line(job),
        "retries": max(0, len(job.meta.get("attempts", [])) - 1),
        "outcome": result.return_value if result is not None and status == "finished" else None,
        "replays": int(job.meta.get("replays", 0)),
        "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
    }


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
