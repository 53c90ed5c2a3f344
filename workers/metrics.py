"""Prometheus metrics, shared by the web and worker processes.

Under gunicorn and the RQ worker pool many processes count at once, so prometheus-client runs in
multiprocess mode: each process writes its counts to files in one directory per host, and
`/metrics` on the web side sums them all, the workers' included. prometheus-client picks single- or
multi-process counting from `PROMETHEUS_MULTIPROC_DIR` when it is first imported, so nothing here
imports it until a process has chosen: the entry points call `setup()` first (the app factory as
gunicorn calls it, `bindery web`, `bindery worker`, `bindery clock`), and the metrics below are
built on first use. A process that never called `setup()` (a test, a one-off command) counts
by itself unless `PROMETHEUS_MULTIPROC_DIR` is set. Queue depth is read from Redis at scrape time.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def default_directory() -> str:
    """One directory per host and user, so that every Bindery process of a deploy finds it."""
    return str(Path(tempfile.gettempdir()) / f"bindery-metrics-{os.getuid()}")


def setup(directory: str | None = None) -> str | None:
    """Count into the host's shared directory: `directory`, else `PROMETHEUS_MULTIPROC_DIR`, else
    `default_directory()`; the variable is set for this process and the ones it starts. Returns the
    directory, or None when prometheus-client was imported too early to share (logged)."""
    chosen = directory or os.environ.get(DIRECTORY_VARIABLE) or default_directory()
    if "prometheus_client" in sys.modules and not os.environ.get(DIRECTORY_VARIABLE):
        log.warning("prometheus_client was imported before metrics.setup(): counting alone")
        return None
    Path(chosen).mkdir(parents=True, exist_ok=True)
    os.environ[DIRECTORY_VARIABLE] = chosen
    return chosen


def shared_directory() -> str | None:
    """Where this process's counts go, or None when it counts alone."""
    return os.environ.get(DIRECTORY_VARIABLE) or None


class _Metric:
    """A prometheus-client metric built on its first use, after the process chose how to count;
    it answers every attribute the real one has (`labels`, `inc`, `observe`, ...)."""

    def __init__(self, kind: str, *args, **kwargs):
        self._kind, self._args, self._kwargs = kind, args, kwargs
        self._built = None
        self._lock = threading.Lock()

    def _metric(self):
        if self._built is None:
            with self._lock:
                if self._built is None:
                    import prometheus_client

                    self._built = getattr(prometheus_client, self._kind)(
                        *self._args, **self._kwargs
                    )
        return self._built

    def __getattr__(self, name: str):
        return getattr(self._metric(), name)


WEBHOOKS = _Metric(
    "Counter",
    "bindery_webhooks",
    "Webhooks received, by event type and answer",
    ["event", "status"],
)
SIGNATURE_FAILURES = _Metric(
    "Counter", "bindery_signature_failures", "Requests refused for their signature"
)
ENQUEUE_SECONDS = _Metric(
    "Histogram",
    "bindery_enqueue_seconds",
    "Time to put a job in Redis",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
JOBS = _Metric(
    "Counter",
    "bindery_jobs",
    "Jobs run, by kind and outcome (failed and retried included)",
    ["kind", "outcome"],
)
LOCK_WAIT_SECONDS = _Metric(
    "Histogram",
    "bindery_lock_wait_seconds",
    "Time a job waited for its locks",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5),
)
TWILIO_CALLS = _Metric(
    "Counter",
    "bindery_twilio_calls",
    "Calls to Twilio, by operation and answer code",
    ["operation", "code"],
)

ALLOCATION_SECONDS = _Metric(
    "Histogram",
    "bindery_allocation_seconds",
    "Time to choose and reserve a session customer's proxy number (one Lua script)",
    buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
)
POOL_EXHAUSTED = _Metric(
    "Counter",
    "bindery_pool_exhausted",
    "Sessions failed because no number of the pool was free for a customer (Proxy's 80206)",
    ["pool"],
)
SESSIONS = _Metric(
    "Counter",
    "bindery_sessions",
    "Sessions ended their opening or closing, by result (open, failed, closed)",
    ["result"],
)


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (its counters stay: they are cumulative)."""
    directory = shared_directory()
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)


class QueueCollector:
    """Queue depth by state, read from Redis when Prometheus scrapes."""

    def __init__(self, queue):
        self.queue = queue

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "bindery_queue_depth", "Jobs in the queue, by state", labels=["state"]
        )
        for state, count in queue_depth(self.queue).items():
            family.add_metric([state], count)
        yield family


def queue_depth(queue) -> dict[str, int]:
    """Jobs by state, read without RQ's registry cleanup (a scrape or a status must not move
    jobs around; the workers' maintenance does that)."""
    return {
        "queued": queue.count,
        "started": queue.started_job_registry.get_job_count(cleanup=False),
        "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
        "failed": queue.failed_job_registry.get_job_count(cleanup=False),
    }


def exposition(queue) -> tuple[bytes, str]:
    """The text `/metrics` answers: every process's metrics plus the queue depth."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    directory = shared_directory()
    if directory:
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted, path=directory)
    else:
        counted = REGISTRY  # one process (tests, a single dev server)
    depth = CollectorRegistry()
    depth.register(QueueCollector(queue))
    return generate_latest(counted) + generate_latest(depth), CONTENT_TYPE_LATEST
