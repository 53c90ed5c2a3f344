"""Filling RQ's own failed and finished registries with a real (burst) worker, for tests: job
functions that fail the way a Twilio error fails a Bindery job, or end with an outcome, and the
helpers that enqueue and run them."""

from __future__ import annotations

from rq import SimpleWorker, get_current_job
from rq.serializers import JSONSerializer

from workers import failures, jobs
from workers.errors import TwilioUnavailable


def fail_with_code(conversation_sid: str, code: int = 20500, address: str = "") -> dict:
    error = TwilioUnavailable(code, 500, f"injected failure for {address or conversation_sid}")
    failures.record_attempt(get_current_job(), error)
    raise error


def finish_with(conversation_sid: str, outcome: str = "added") -> dict:
    return {"outcome": outcome, "conversation_sid": conversation_sid}


def enqueue_failure(rt, conversation: str, code=20500, kind="participant-add", address="") -> str:
    """A job that will fail with `code` (run it with `run_jobs`); returns its id."""
    job = rt.queue.rq.enqueue(
        "tests.workers.failing.fail_with_code",
        kwargs={"conversation_sid": conversation, "code": code, "address": address},
        meta={"kind": kind},
        failure_ttl=3600,
    )
    return job.id


def enqueue_outcome(rt, conversation: str, outcome: str = "added") -> str:
    job = rt.queue.rq.enqueue(
        "tests.workers.failing.finish_with",
        kwargs={"conversation_sid": conversation, "outcome": outcome},
        result_ttl=3600,
    )
    return job.id


def run_jobs(rt) -> None:
    """Every queued job, run by a real RQ worker in this process until the queue is empty."""
    jobs.install(rt)
    try:
        worker = SimpleWorker([rt.queue.rq], connection=rt.connection, serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING")
    finally:
        jobs.install(None)
