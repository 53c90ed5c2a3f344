"""`bindery status`: one snapshot of what an operator needs to know.

Times are ISO 8601 UTC (`logs.iso_time`), as in the API; `bindery status` prints them for people.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from rq import Worker

from workers import failures, keys, metrics, schedule
from workers.logs import iso_time
from workers.runtime import Runtime


def snapshot(rt: Runtime) -> dict:
    queue = rt.queue.rq
    now = datetime.now(UTC)
    workers = []
    for worker in Worker.all(queue=queue):
        heartbeat = worker.last_heartbeat
        workers.append(
            {
                "name": worker.name,
                "state": str(getattr(worker.get_state(), "value", worker.get_state())),
                "last_heartbeat": iso_time(heartbeat),
                "seconds_since_heartbeat": round((now - heartbeat).total_seconds(), 1)
                if heartbeat
                else None,
            }
        )
    failed = failures.failed(rt)
    return {
        "queue": metrics.queue_depth(queue),
        "workers": workers,
        "retrying": failures.retrying(rt),
        "failed_by_code": dict(Counter(str(f.code) for f in failed)),
        "schedule": {
            name: {**entry, "next_at": iso_time(entry.get("next_at"))}
            for name, entry in schedule.registered(rt).items()
        },
        "clock": clock(rt),
        "ledger": rt.ledger.size(),
        "counters": rt.ledger.counters(),
        "webhooks": {
            k.decode(): int(v) for k, v in rt.connection.hgetall(keys.webhook_counters()).items()
        },
    }


def clock(rt: Runtime) -> dict | None:
    """The running `bindery clock`: its host, pid and since when; None when none ticks."""
    raw = rt.connection.get(keys.clock_heartbeat())
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, dict):  # written as `host:pid` before 0.2
        host, _, pid = raw.decode(errors="replace").rpartition(":")
        found = {"host": host, "pid": pid}
    return {
        "host": str(found.get("host", "")),
        "pid": int(found["pid"]) if str(found.get("pid", "")).isdigit() else None,
        "since": iso_time(found.get("since")),
    }
