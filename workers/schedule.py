"""The periodic jobs, declared in one list with stable names, and the clock that enqueues them.

RQ 3's cron enqueues with the pickle serializer (its CronScheduler takes no serializer), which
Bindery's JSON-only workers refuse, so the clock is a short loop of its own that enqueues through the
same `JobQueue`. Each run's job id is the job's name and the time window it belongs to
(`schedule-cleanup-<window>`), and RQ's unique enqueue keeps one job per id: two clocks started by
mistake enqueue each window's run once between them, with no leader election.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from workers import job_catalog, keys, pruning
from workers.runtime import Runtime

log = logging.getLogger(__name__)

TICK = 5.0
"""Seconds between the clock's looks at the schedule."""
PERIODIC_TIMEOUT = 1800
"""Seconds a periodic job (a scan of every open conversation) may run."""


@dataclass(frozen=True)
class Periodic:
    name: str
    function: str
    interval: float

    def window(self, now: float) -> int:
        return int(now // self.interval)

    def job_id(self, now: float) -> str:
        return job_catalog.schedule_job_id(self.name, self.window(now))


def periodic_jobs(rt: Runtime) -> list[Periodic]:
    jobs = [
        Periodic("cleanup", job_catalog.CLEANUP, rt.settings.cleanup_interval),
        Periodic("reconcile", job_catalog.RECONCILE, rt.settings.reconcile_interval),
        Periodic("prune", job_catalog.PRUNE, pruning.INTERVAL if rt.settings.prune_after else 0),
    ]
    return [job for job in jobs if job.interval > 0]


def tick(rt: Runtime, now: float | None = None, clock: str = "") -> list[str]:
    """Enqueue every periodic job whose current window has no run yet; returns the new job ids."""
    now = time.time() if now is None else now
    created = []
    for periodic in periodic_jobs(rt):
        job, new = rt.queue.enqueue(
            periodic.function,
            {},
            kind=f"schedule:{periodic.name}",
            job_id=periodic.job_id(now),
            timeout=PERIODIC_TIMEOUT,
        )
        if new:
            created.append(job.id)
            log.info("enqueued %s (%s)", periodic.name, job.id)
        entry = {
            "interval": periodic.interval,
            "function": periodic.function,
            "last_job_id": job.id,
            "next_at": (periodic.window(now) + 1) * periodic.interval,
            "clock": clock,
        }
        rt.connection.hset(keys.schedule(), periodic.name, json.dumps(entry))
    return created


def registered(rt: Runtime) -> dict[str, dict]:
    """The schedule as the clock last wrote it."""
    raw = rt.connection.hgetall(keys.schedule())
    return {name.decode(): json.loads(value) for name, value in raw.items()}


def run_clock(rt: Runtime, stop: threading.Event | None = None, tick_seconds: float = TICK) -> None:
    stop = stop or threading.Event()
    name = f"{socket.gethostname()}:{os.getpid()}"
    # Who ticks, for `bindery status`: host, pid and since when.
    heartbeat = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
    log.info(
        "clock %s started: %s",
        name,
        ", ".join(f"{p.name} every {p.interval:g}s" for p in periodic_jobs(rt)),
    )
    while not stop.is_set():
        try:
            rt.connection.set(keys.clock_heartbeat(), heartbeat, ex=int(tick_seconds * 3) + 1)
            tick(rt, clock=name)
        except Exception:  # noqa: BLE001 - a Redis blip must not stop the clock; it retries next tick
            log.exception("clock tick failed")
        stop.wait(tick_seconds)
