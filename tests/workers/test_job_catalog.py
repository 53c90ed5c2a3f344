"""Job names and ids are stored in Redis with queued jobs: each literal is pinned, and a job queued
by the last release still runs on this one."""

from __future__ import annotations

import fakeredis
import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.workers.world import World
from workers import job_catalog, jobs
from workers.queue import JobQueue

CH = "CH" + "c" * 32


def test_every_name_is_pinned():
    assert job_catalog.PARTICIPANT_ADD == "workers.jobs.participant_add"
    assert job_catalog.STATE_CHANGE == "workers.jobs.state_change"
    assert job_catalog.CLOSE_IF_INACTIVE == "workers.jobs.close_if_inactive"
    assert job_catalog.CLOSE_IF_STALE == "workers.jobs.close_if_stale"
    assert job_catalog.CLEANUP == "workers.jobs.cleanup_stale"
    assert job_catalog.RECONCILE == "workers.jobs.reconcile_ledger"
    assert job_catalog.PRUNE == "workers.jobs.prune_ledger"
    assert job_catalog.SESSION_OPEN == "workers.jobs.session_open"
    assert job_catalog.SESSION_CLOSE == "workers.jobs.session_close"
    assert job_catalog.SESSION_CHECK == "workers.jobs.session_check"
    assert job_catalog.ON_CONVERSATION_ADDED == "workers.jobs.on_conversation_added"
    assert job_catalog.ON_PARTICIPANT_ADDED == "workers.jobs.on_participant_added"
    assert job_catalog.ON_PARTICIPANT_REMOVED == "workers.jobs.on_participant_removed"
    assert job_catalog.ON_CONVERSATION_STATE_UPDATED == (
        "workers.jobs.on_conversation_state_updated"
    )
    assert job_catalog.ON_CONVERSATION_REMOVED == "workers.jobs.on_conversation_removed"
    assert job_catalog.ON_MESSAGE_ADDED == "workers.jobs.on_message_added"
    assert job_catalog.LEGACY == (
        "workers.jobs.record_conversation_added",
        "workers.jobs.record_participant",
        "workers.jobs.record_state",
        "workers.jobs.record_conversation_removed",
        "workers.jobs.record_message",
    )


def test_every_id_is_pinned():
    """The same ids the last release gave the same operations (a redelivery across a deploy is
    still recognised)."""
    assert job_catalog.event_job_id("tok-1", "key") == "event-65dcf16ea3dfa49069628089eb4a7548"
    assert job_catalog.event_job_id("", "key") == "event-2c70e12b7a0646f92279f427c7b38e73"
    assert job_catalog.add_job_id(CH, "click-1") == "add-f03656bbdca641632430f0cc505e7645"
    assert job_catalog.state_job_id(CH, "k") == "state-526b95f8565b3235db80b63922dd8186"
    assert job_catalog.auto_add_job_id(CH, "bot") == "auto-add-c4bf9be8f344005480eee9374b4c467f"
    assert (
        job_catalog.pre_event_add_job_id(CH, "+15551230001", "+15550001111", "CH" + "d" * 32)
        == "pre-add-0a4120a6f86c48d38cb1b85557d9cd97"
    )
    assert (
        job_catalog.close_inactive_job_id(CH, 12.0)
        == "close-inactive-e7d6db2fc2760a09b9db63494387227b"
    )
    assert (
        job_catalog.cleanup_close_job_id(CH, 1000.5)
        == "cleanup-close-770659b6baa6b2d0f97e1f9736205cc2"
    )
    assert job_catalog.schedule_job_id("cleanup", 42) == "schedule-cleanup-42"
    session = "BS" + "0" * 32
    assert job_catalog.session_open_job_id(session) == f"session-open-{session}"
    assert job_catalog.session_close_job_id(session) == f"session-close-{session}"
    assert job_catalog.session_check_job_id(session, 2) == f"session-check-{session}-2"


def test_every_catalogued_name_names_a_job():
    names = [
        value
        for name, value in vars(job_catalog).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    ]
    for name in [*names, *job_catalog.LEGACY]:
        assert callable(jobs.handler(name)), name
    with pytest.raises(KeyError):
        jobs.handler("workers.participants.add_participant")


@pytest.mark.parametrize(
    ("function", "kwargs", "recorded"),
    [
        (
            "workers.jobs.record_participant",
            {
                "conversation_sid": CH,
                "change": "added",
                "at": 100.0,
                "participant_sid": "MB" + "1" * 32,
                "identity": "agent-1",
                "address": "",
                "proxy_address": "",
            },
            "recorded",
        ),
        (
            "workers.jobs.record_state",
            {"conversation_sid": CH, "state": "inactive", "at": 5.0},
            "recorded",
        ),
        ("workers.jobs.record_message", {"conversation_sid": CH, "at": 100.0}, "recorded"),
        (
            "workers.jobs.record_conversation_removed",
            {"conversation_sid": CH, "at": 100.0},
            "recorded",
        ),
    ],
)
def test_a_job_queued_by_the_last_release_still_runs(function, kwargs, recorded):
    """The arguments as 0.1 wrote them, queued in Redis, run by a real RQ worker."""
    world = World()
    try:
        server = world.redis.connection_pool.connection_kwargs["server"]
        connection = fakeredis.FakeRedis(server=server)
        queue = JobQueue(connection, world.settings)
        job, _ = queue.enqueue(function, kwargs, kind="legacy")
        jobs.install(world.rt)
        worker = SimpleWorker([queue.rq], connection=connection, serializer=JSONSerializer)
        assert worker.work(burst=True)
        done = Job.fetch(job.id, connection=connection, serializer=JSONSerializer)
        assert done.get_status() == "finished", done.latest_result().exc_string
        assert done.return_value()["outcome"] == recorded
    finally:
        jobs.install(None)
        world.close()
