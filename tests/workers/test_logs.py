"""The log format every process shares: one JSON line per record, times ISO 8601 UTC; and RQ's
traceback record of an attempt the job already explained in one line left out."""

from __future__ import annotations

import io
import json
import logging

from workers import logs


def test_iso_time():
    assert logs.iso_time(0) is None and logs.iso_time(None) is None
    assert logs.iso_time(1_764_621_725.1234) == "2025-12-01T20:42:05.123Z"
    assert logs.iso_time(1_764_621_725.9996) == "2025-12-01T20:42:06.000Z"


def _rq_failure(logger: logging.Logger, job_id: str) -> None:
    # RQ's worker says this, with the traceback, about every attempt that raised.
    logger.error(
        "Worker %s: job %s: exception raised while executing (%s)\n%s",
        "w1",
        job_id,
        "workers.jobs.participant_add",
        "Traceback (most recent call last):\n  ...",
        extra={"job_id": job_id},
    )


def test_an_explained_failure_leaves_rqs_record_out_and_nothing_else():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.rq.worker")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [handler]
    logger.addFilter(logs.ExplainedFailures())
    try:
        logs.explained("job-1")
        _rq_failure(logger, "job-1")  # explained: left out
        _rq_failure(logger, "job-1")  # a second attempt nobody explained: kept
        _rq_failure(logger, "job-2")  # another job: kept
        logger.info("Job %s: scheduled for retry", "job-1")  # RQ's other lines: kept
    finally:
        logger.handlers[:] = []
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r.get("job_id")) for r in records] == [
        ("error", "job-1"),
        ("error", "job-2"),
        ("info", None),
    ]
    assert records[0]["time"].endswith("Z") and "Traceback" in records[0]["message"]
