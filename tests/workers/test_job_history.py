"""Reading back what became of jobs: recent outcomes, and the state of given jobs."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.workers.failing import enqueue_failure, enqueue_outcome, run_jobs
from workers import job_history
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


def test_finished_since_reads_outcomes_and_says_when_it_was_cut_short(rt, work):
    for outcome in ("added", "added", "already_present"):
        finish(rt, outcome)
    work()
    found, truncated = job_history.finished_since(rt, since=0)
    assert sorted(f.outcome for f in found) == ["added", "added", "already_present"]
    assert not truncated
    found, truncated = job_history.finished_since(rt, since=0, limit=2)
    assert len(found) == 2 and truncated
    assert job_history.finished_since(rt, since=found[0].at + 3600) == ([], False)


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
