"""Running the workers: `bindery worker --processes N` starts N real RQ worker processes.

RQ's `WorkerPool` forks the processes, restarts any that dies, and runs each with the scheduler (so
retries and delayed jobs run). Each process is a `SimpleWorker`: jobs run in the worker process
itself instead of a fork per job, so the Twilio HTTP session and the Redis connections stay warm
between jobs; a job that hangs is still stopped by its `job_timeout`.

RQ logs every attempt that raised with its traceback, at level error. A failure Bindery expects (a
busy lock, Twilio overloaded, a permanent refusal) is logged by the job in one line instead, and
`logs.ExplainedFailures`, a filter on RQ's worker logger (RQ's own extension point is logging),
leaves RQ's record of it out; anything unexpected keeps its traceback.
"""

from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool

from workers import jobs, keys, logs
from workers.runtime import Runtime, connect
from workers.settings import Settings

MAINTENANCE_INTERVAL = 15
"""Seconds between a worker's maintenance passes (which requeue jobs whose worker died)."""


class BinderyWorker(SimpleWorker):
    """An RQ worker process that builds its runtime once, from the pool's settings, and installs
    it for the jobs it runs."""

    settings: Settings

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        # RQ blocks an idle worker in dequeue for worker_ttl - 15 s and runs maintenance only
        # between dequeues: this keeps the passes coming on a quiet queue too.
        kwargs.setdefault("worker_ttl", kwargs["maintenance_interval"] + 15)
        super().__init__(*args, **kwargs)
        logs.configure(secrets=(self.settings.twilio_auth_token, self.settings.api_token))
        rq_log = logging.getLogger("rq.worker")
        if not any(isinstance(f, logs.ExplainedFailures) for f in rq_log.filters):
            rq_log.addFilter(logs.ExplainedFailures())
        jobs.install(Runtime.build(self.settings))

    @classmethod
    def with_settings(cls, settings: Settings) -> type[BinderyWorker]:
        """The class the pool forks its processes with, carrying the one settings object."""
        return type(cls.__name__, (cls,), {"settings": settings})


def run_pool(
    settings: Settings, processes: int, burst: bool = False, logging_level: str = "INFO"
) -> None:
    settings.require("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    pool = WorkerPool(
        [keys.QUEUE_NAME],
        connection=connect(settings.redis_url),
        num_workers=processes,
        worker_class=BinderyWorker.with_settings(settings),
        serializer=JSONSerializer,
    )
    logs.configure(logging_level, secrets=(settings.twilio_auth_token, settings.api_token))
    logging.getLogger(__name__).info("starting %d worker processes", processes)
    pool.start(burst=burst, logging_level=logging_level)
