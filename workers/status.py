"""`bindery status`: one snapshot of what an operator needs to know."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from rq import Worker

from workers import failures, keys, metrics, schedule
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
                "last_heartbeat": heartbeat.isoformat() if heartbeat else None,
                "seconds_since_heartbeat": round((now - heartbeat).total_seconds(), 1)
                if heartbeat
                else None,
            }
        )
    failed = failures.failed(rt)
    clock = rt.connection.get(keys.clock_heartbeat())
    return {
        "queue": metrics.queue_depth(queue),
        "workers": workers,
        "failed_by_code": dict(Counter(str(f.code) for f in failed)),
        "schedule": schedule.registered(rt),
        "clock": clock.decode() if clock else None,
        "ledger": rt.ledger.size(),
        "counters": rt.ledger.counters(),
        "webhooks": {
            k.decode(): int(v) for k, v in rt.connection.hgetall(keys.webhook_counters()).items()
        },
    }
