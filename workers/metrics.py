"""Prometheus metrics, shared by the web and worker processes.

Under gunicorn and the RQ worker pool many processes count at once, so prometheus-client runs in
multiprocess mode: the `bindery` command points `PROMETHEUS_MULTIPROC_DIR` at one directory
(`workers/cli/__init__.py`) before anything imports this module, and `/metrics` on the web
side sums every process's files, the workers' included when they share a host. Queue depth is read
from Redis at scrape time rather than counted.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

WEBHOOKS = Counter(
    "bindery_webhooks", "Webhooks received, by event type and answer", ["event", "status"]
)
SIGNATURE_FAILURES = Counter("bindery_signature_failures", "Requests refused for their signature")
ENQUEUE_SECONDS = Histogram(
    "bindery_enqueue_seconds",
    "Time to put a job in Redis",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
JOBS = Counter(
    "bindery_jobs",
    "Jobs run, by kind and outcome (failed and retried included)",
    ["kind", "outcome"],
)
LOCK_WAIT_SECONDS = Histogram(
    "bindery_lock_wait_seconds",
    "Time a job waited for its locks",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5),
)
TWILIO_CALLS = Counter(
    "bindery_twilio_calls", "Calls to Twilio, by operation and answer code", ["operation", "code"]
)


def process_exited(pid: int) -> None:
    """Drop a dead process's live gauges (its counters stay: they are cumulative)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


class QueueCollector:
    """Queue depth by state, read from Redis when Prometheus scrapes."""

    def __init__(self, queue):
        self.queue = queue

    def collect(self):
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
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY  # one process (tests, a single dev server)
    depth = CollectorRegistry()
    depth.register(QueueCollector(queue))
    return generate_latest(counted) + generate_latest(depth), CONTENT_TYPE_LATEST
