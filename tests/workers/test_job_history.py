"""Reading back what became of jobs: recent outcomes, and the state of given jobs."""

from __future__ import annotations

import time

import pytest

from tests.conftest import make_settings
from tests.workers.failing import enqueue_failure, enqueue_outcome, run_jobs
from workers import job_catalog, job_history, keys
from workers.runtime import Runtime

CH = "CH" + "a" * 32


@pytest.fixture
def rt(fake_redis):
    return Runtime.build(make_settings(), fake_redis, calls_twilio=False)


@pytest.fixture
def work(rt):
    return lambda: run_jobs(rt)


def fail(rt, conversation=CH, kind="participant-add"):
    return enqueue_failure(rt, conversation, kind=kind)


def finish(rt, outcome: str) -> str:
    return enqueue_outcome(rt, CH, outcome)


def test_a_finished_job_counts_its_outcome_in_its_minute(rt, work):
    before = time.time()
    for _ in range(3):
        rt.queue.enqueue(
            job_catalog.ON_MESSAGE_ADDED, {"conversation_sid": CH, "at": 1.0}, kind="e"
        )
    work()
    found = job_history.finished_since(rt, before - 60, time.time())
    assert [(f.outcome, f.count) for f in found] == [("recorded", 3)]
    assert before - 60 <= found[0].at <= time.time()
    key = keys.outcome_counts(int(found[0].at))
    assert 0 < rt.connection.ttl(key) <= job_history.OUTCOMES_KEPT


def test_outcome_counts_are_read_minute_by_minute_within_the_span(rt):
    job_history.record_outcome(rt.connection, "added", 600.0)
    job_history.record_outcome(rt.connection, "added", 659.0)
    job_history.record_outcome(rt.connection, "already_present", 660.0)
    job_history.record_outcome(rt.connection, "added", 7200.0)
    found = job_history.finished_since(rt, since=630.0, until=700.0)
    assert sorted((f.at, f.outcome, f.count) for f in found) == [
        (600.0, "added", 2),
        (660.0, "already_present", 1),
    ]
    assert job_history.finished_since(rt, since=0.0, until=500.0) == []


def test_states_of(rt, work):
    done, failed = finish(rt, "added"), fail(rt)
    work()
    waiting = finish(rt, "added")
    assert job_history.states_of(rt, [done, failed, waiting, "gone-job"]) == {
        done: "added",
        failed: "failed",
        waiting: "queued",
        "gone-job": "gone",
    }
