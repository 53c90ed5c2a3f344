"""Asking a conflict again with another policy: from the conflict's record alone once RQ has let
the add's job go, from the job for a record an older release wrote, and a clear answer when
neither has the add's arguments."""

from __future__ import annotations

import pytest
from rq.job import Job
from rq.results import Result

from tests.workers.failing import run_jobs
from tests.workers.world import RuntimeClock, World
from workers import failures, job_catalog, keys, policy_retry
from workers.queue import RESULT_TTL
from workers.runtime import Runtime

CUSTOMER, PROXY = "+15551230001", "+15550001111"


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


@pytest.fixture
def rt(world):
    """The world's Twilio, Redis and clock, with RQ's real queue: jobs run through the worker's
    wrapper (`workers/jobs.py`), which records a conflict as production does."""
    return Runtime.build(
        world.settings,
        world.redis,
        twilio=world.twilio,
        clock=RuntimeClock(world.clock),
        renew_locks=False,
    )


def _held_elsewhere(world) -> tuple[str, str]:
    """(the conversation that holds the pair, the conversation asking for it)."""
    holder = world.conversation(webhooks=True)
    world.rest_add(holder, address=CUSTOMER, proxy_address=PROXY)
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    return holder, sid


def _conflicting_add(rt, sid: str) -> str:
    arguments = {"conversation_sid": sid, "address": CUSTOMER, "proxy_address": PROXY}
    job_id = job_catalog.add_job_id(sid, "first-ask")
    rt.queue.enqueue(
        job_catalog.PARTICIPANT_ADD,
        {**arguments, "policy": "reject"},
        kind="participant-add",
        job_id=job_id,
    )
    run_jobs(rt)
    assert rt.queue.fetch(job_id).latest_result().return_value["outcome"] == "conflict"
    return job_id


def _expire(rt, job_id: str) -> None:
    """What RQ's result TTL does to a finished job."""
    assert rt.connection.delete(Job.key_for(job_id), Result.get_key(job_id)) == 2
    assert rt.queue.fetch(job_id) is None


def _participants(world, sid: str) -> list:
    return [p.binding.address for p in world.participants(sid) if p.binding]


def test_a_finished_add_is_kept_only_as_long_as_any_result(rt, world):
    _, sid = _held_elsewhere(world)
    job_id = _conflicting_add(rt, sid)
    assert 0 < rt.connection.ttl(Job.key_for(job_id)) <= RESULT_TTL


def test_a_conflict_is_asked_again_from_its_record_once_the_job_is_gone(rt, world):
    holder, sid = _held_elsewhere(world)
    job_id = _conflicting_add(rt, sid)
    _expire(rt, job_id)

    result, job = policy_retry.retry(rt, job_id, "move")

    assert result == "enqueued"
    assert job.kwargs == {
        "conversation_sid": sid,
        "address": CUSTOMER,
        "proxy_address": PROXY,
        "policy": "move",
    }
    assert job.meta["retry_of"] == job_id
    run_jobs(rt)
    answer = rt.queue.fetch(job.id).latest_result().return_value
    assert answer["outcome"] == "conflict_resolved" and answer["resolution"] == "move"
    assert _participants(world, sid) == [CUSTOMER] and _participants(world, holder) == []
    again, same = policy_retry.retry(rt, job_id, "move")  # a second click: the same job
    assert again == "duplicate" and same.id == job.id


def test_the_record_keeps_the_request_out_of_the_listing(rt, world):
    _, sid = _held_elsewhere(world)
    job_id = _conflicting_add(rt, sid)
    record = failures.conflict(rt, job_id)
    assert record["request"]["function"] == job_catalog.PARTICIPANT_ADD
    assert record["request"]["arguments"]["address"] == CUSTOMER
    (item,) = failures.conflict_items(rt)
    assert item["id"] == job_id and "request" not in item
    assert CUSTOMER not in str(item) and PROXY not in str(item)


def _old_record(rt, job_id: str, sid: str) -> None:
    """A conflict as releases before this one recorded it: the outcome, not the request."""
    outcome = {"outcome": "conflict", "conversation_sid": sid, "holder": "CH" + "b" * 32}
    failures.record_conflict(rt, job_id, {**outcome, "policy": "reject"})
    assert "request" not in failures.conflict(rt, job_id)


def test_an_old_record_falls_back_to_its_job_while_rq_has_it(rt, world):
    _, sid = _held_elsewhere(world)
    job, _ = rt.queue.enqueue(
        job_catalog.PARTICIPANT_ADD,
        {"conversation_sid": sid, "address": CUSTOMER, "proxy_address": PROXY},
        kind="participant-add",
        job_id="add-old",
    )
    rt.connection.delete(f"rq:queue:{keys.QUEUE_NAME}")  # as if it had run
    _old_record(rt, "add-old", sid)

    result, new = policy_retry.retry(rt, "add-old", "reuse")

    assert result == "enqueued" and new.kwargs == {**job.kwargs, "policy": "reuse"}


def test_an_old_record_without_its_job_answers_that_it_cannot_be_asked_again(rt, world):
    _old_record(rt, "add-gone", "CH" + "a" * 32)

    assert policy_retry.retry(rt, "add-gone", "move") == ("expired", None)
    assert "older release" in policy_retry.RESULTS["expired"]
    assert rt.queue.rq.count == 0


def test_neither_a_record_nor_a_job_is_missing(rt):
    assert policy_retry.retry(rt, "no-such-job", "move") == ("missing", None)


def test_a_record_of_another_function_is_not_an_add(rt):
    failures.record_conflict(
        rt,
        "state-1",
        {"outcome": "conflict", "conversation_sid": "CH" + "a" * 32},
        function=job_catalog.STATE_CHANGE,
        arguments={"conversation_sid": "CH" + "a" * 32},
    )
    assert policy_retry.retry(rt, "state-1", "move") == ("not_an_add", None)
