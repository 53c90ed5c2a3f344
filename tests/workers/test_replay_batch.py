"""Replay batches: what they match, their progress, and a retried batch counting again."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.workers.failing import enqueue_failure, run_jobs
from workers import failures, keys, policy_retry, replay_batch
from workers.replay_batch import Filters
from workers.runtime import Runtime

CH, OTHER = "CH" + "a" * 32, "CH" + "b" * 32


@pytest.fixture
def rt(fake_redis):
    return Runtime.build(make_settings(), fake_redis, calls_twilio=False)


@pytest.fixture
def work(rt):
    return lambda: run_jobs(rt)


def fail(rt, conversation=CH, kind="participant-add"):
    return enqueue_failure(rt, conversation, kind=kind)


def test_matching_filters_by_kind_too(rt, work):
    add = fail(rt, CH, kind="participant-add")
    fail(rt, CH, kind="state-change")
    fail(rt, OTHER, kind="participant-add")
    work()
    assert [f.id for f in replay_batch.matching(rt, Filters(CH, 0, "participant-add"))] == [add]
    assert len(replay_batch.matching(rt, Filters())) == 3


def test_run_replays_each_match_and_a_retry_counts_again(rt, work):
    ids = {fail(rt, CH), fail(rt, CH)}
    work()
    batch_id = replay_batch.start(rt, Filters(conversation=CH), expected=2, operator="op")
    rt.queue.rq.empty()  # the batch's job is run by hand below
    assert replay_batch.run(rt, batch_id, conversation=CH)["requeued"] == 2
    # Run again (as a retried job would): nothing is failed anymore, the count starts over.
    again = replay_batch.run(rt, batch_id, conversation=CH)
    assert again == {"outcome": "replayed", "batch_id": batch_id, "total": 0}
    progress = replay_batch.progress(rt, batch_id)
    assert progress["total"] == progress["done"] == 0 and progress["results"] == {}
    assert progress["replayed"] == {"queued": 2}  # the jobs the first run requeued stay listed
    assert not progress["settled"]
    assert set(rt.queue.rq.job_ids) == ids
    assert rt.connection.ttl(keys.replay_batch(batch_id)) > 0


def test_progress_of_an_unknown_batch(rt):
    assert replay_batch.progress(rt, "0" * 16) is None


def test_policy_retry_needs_a_participant_add(rt, work):
    job_id = fail(rt, CH)
    work()
    assert policy_retry.retry(rt, job_id, "move") == ("not_an_add", None)
    assert policy_retry.retry(rt, "no-such-job", "move") == ("missing", None)
    with pytest.raises(ValueError):
        policy_retry.retry(rt, job_id, "destroy")
    assert failures.failed(rt)[0].id == job_id
