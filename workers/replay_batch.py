"""Replaying every failed job that matches a filter, in the background, with its progress in Redis.

The console asks for a batch (`start`): its record is written and an RQ job
(`workers.jobs.replay_failed`) is enqueued, which runs `run`. That finds the failed jobs matching
the filter at the time it runs and replays each with `failures.replay`, exactly as
`bindery jobs replay --all` does (same job, same locks, same ledger: an operation that already took
effect ends `already_present`), counting each result in the batch's hash so that a page can show
the progress. A batch whose job is retried starts its count again; the jobs it requeued stay listed.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass

from workers import failures, job_catalog, job_history, keys
from workers.failures import JobSummary
from workers.runtime import Runtime

BATCH_TTL = 7 * 86400
"""Seconds a batch's record (filters, progress, requeued job ids) is kept."""
BATCH_TIMEOUT = 1800
"""Seconds the batch's job may run (each replay is a few Redis round trips)."""
BATCHES_KEPT = 50
"""Most recent batches listed; older ones expire with their record."""
STATES_CHECKED = 500
"""Requeued jobs whose state a progress report reads, at most."""


@dataclass(frozen=True)
class Filters:
    """What a batch replays: failed jobs of this conversation, Twilio code, kind, failed since
    (epoch seconds); an empty field matches everything."""

    conversation: str = ""
    code: int = 0
    kind: str = ""
    since: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def matching(rt: Runtime, filters: Filters) -> list[JobSummary]:
    """The failed jobs a batch with these filters would replay, newest first."""
    items = failures.failed(
        rt, conversation=filters.conversation, code=filters.code, since=filters.since
    )
    return [item for item in items if not filters.kind or item.kind == filters.kind]


def start(rt: Runtime, filters: Filters, expected: int, operator: str) -> str:
    """Record a batch and enqueue its job; returns the batch id. `expected` is the count the
    operator confirmed (the dry run's), kept to show beside what the job finds."""
    batch_id = secrets.token_hex(8)
    now = time.time()
    key = keys.replay_batch(batch_id)
    pipe = rt.connection.pipeline()
    pipe.hset(
        key,
        mapping={
            "state": "queued",
            "filters": json.dumps(filters.to_dict(), sort_keys=True),
            "expected": expected,
            "operator": operator,
            "created_at": now,
            "total": 0,
            "done": 0,
        },
    )
    pipe.expire(key, BATCH_TTL)
    pipe.zadd(keys.replay_batches(), {batch_id: now})
    pipe.zremrangebyrank(keys.replay_batches(), 0, -BATCHES_KEPT - 1)
    pipe.execute()
    rt.queue.enqueue(
        job_catalog.REPLAY_FAILED,
        {"batch_id": batch_id, **filters.to_dict()},
        kind="replay-batch",
        job_id=job_catalog.replay_batch_job_id(batch_id),
        timeout=BATCH_TIMEOUT,
    )
    return batch_id


def run(
    rt: Runtime, batch_id: str, conversation: str = "", code: int = 0, kind: str = "", since=0.0
) -> dict:
    """The batch's job: replay each matching failed job, counting as it goes."""
    key, jobs_key = keys.replay_batch(batch_id), keys.replay_batch_jobs(batch_id)
    items = matching(rt, Filters(conversation, int(code), kind, float(since)))
    stale = [f for f in rt.connection.hkeys(key) if f.decode().startswith("result:")]
    pipe = rt.connection.pipeline()
    if stale:
        pipe.hdel(key, *stale)
    pipe.hset(
        key, mapping={"state": "running", "total": len(items), "done": 0, "started_at": time.time()}
    )
    pipe.execute()
    counts: Counter[str] = Counter()
    for item in items:
        result = failures.replay(rt, item.id)
        counts[result] += 1
        pipe = rt.connection.pipeline()
        pipe.hincrby(key, "done", 1)
        pipe.hincrby(key, f"result:{result}", 1)
        if result == "requeued":
            pipe.rpush(jobs_key, item.id)
        pipe.execute()
    pipe = rt.connection.pipeline()
    pipe.hset(key, mapping={"state": "done", "finished_at": time.time()})
    pipe.expire(key, BATCH_TTL)
    pipe.expire(jobs_key, BATCH_TTL)
    pipe.execute()
    return {"outcome": "replayed", "batch_id": batch_id, "total": len(items), **counts}


def progress(rt: Runtime, batch_id: str, with_jobs: bool = True) -> dict | None:
    """A batch's state, its counts, and (`with_jobs`) what became of the jobs it requeued; None if
    the batch is unknown."""
    raw = rt.connection.hgetall(keys.replay_batch(batch_id))
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    checked: list[str] = []
    if with_jobs:
        requeued = rt.connection.lrange(keys.replay_batch_jobs(batch_id), 0, -1)
        checked = list(dict.fromkeys(j.decode() for j in requeued))[:STATES_CHECKED]
    states = Counter(job_history.states_of(rt, checked).values()) if checked else Counter()
    return {
        "id": batch_id,
        "state": fields.get("state", ""),
        "filters": json.loads(fields.get("filters", "{}")),
        "operator": fields.get("operator", ""),
        "expected": int(fields.get("expected", 0)),
        "total": int(fields.get("total", 0)),
        "done": int(fields.get("done", 0)),
        "results": {
            name.removeprefix("result:"): int(value)
            for name, value in sorted(fields.items())
            if name.startswith("result:")
        },
        "created_at": float(fields.get("created_at", 0)),
        "finished_at": float(fields.get("finished_at", 0) or 0),
        "replayed": dict(sorted(states.items())),
        "replayed_checked": len(checked),
        "settled": fields.get("state") == "done"
        and not any(state in job_history.UNSETTLED for state in states),
    }


def recent(rt: Runtime, count: int = 10) -> list[dict]:
    """The most recent batches' progress, newest first (those whose record expired left out)."""
    ids = [i.decode() for i in rt.connection.zrevrange(keys.replay_batches(), 0, count - 1)]
    found = (progress(rt, batch_id, with_jobs=False) for batch_id in ids)
    return [batch for batch in found if batch is not None]
