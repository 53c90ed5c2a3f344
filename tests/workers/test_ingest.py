"""One round trip per unique job: the hash RQ would write, a compact de-duplication key with a TTL."""

import json
from datetime import timedelta

import fakeredis
import pytest
import redis
from rq import Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.conftest import make_settings
from workers import job_catalog, keys
from workers.queue import DEDUP_TTL, FAILURE_TTL, RESULT_TTL, JobQueue

CH = "CH" + "1" * 32
PER_JOB_TIMES = ("created_at", "enqueued_at")


@pytest.fixture
def connection():
    return fakeredis.FakeRedis()


def _rq_hash(connection, queue: JobQueue, func, kwargs, job_id, delay=0.0, **ours):
    """What RQ's own unique enqueue writes for the job our queue just wrote under `job_id`."""
    written = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    options = dict(
        kwargs=kwargs,
        job_id=f"rq-{job_id}",
        job_timeout=written.timeout,
        result_ttl=written.result_ttl,
        failure_ttl=written.failure_ttl,
        retry=Retry(max=written.retries_left, interval=written.retry_intervals),
        meta=written.meta,
        description=written.description,
        unique=True,
    )
    if delay:
        queue.rq.enqueue_in(timedelta(seconds=delay), func, **options)
    else:
        queue.rq.enqueue(func, **options)
    return connection.hgetall(f"rq:job:rq-{job_id}")


def _without_times(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if k.decode() not in PER_JOB_TIMES}


@pytest.mark.parametrize("delay", [0.0, 90.0])
def test_the_job_hash_is_the_one_rq_writes(connection, delay):
    queue = JobQueue(connection, make_settings())
    kwargs = {"conversation_sid": CH, "at": 1.5, "identity": "agent-ü"}
    job_id = job_catalog.event_job_id("token-1", "")
    _, created = queue.enqueue(
        job_catalog.ON_PARTICIPANT_ADDED, kwargs, kind="event:x", job_id=job_id, delay=delay
    )
    assert created
    ours = connection.hgetall(f"rq:job:{job_id}")
    theirs = _rq_hash(connection, queue, job_catalog.ON_PARTICIPANT_ADDED, kwargs, job_id, delay)
    assert _without_times(ours) == _without_times(theirs)
    assert set(ours) == set(theirs)
    job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert job.func_name == job_catalog.ON_PARTICIPANT_ADDED and job.kwargs == kwargs
    assert job.meta["kind"] == "event:x" and job.origin == "bindery"
    assert job.retries_left == 8 and len(job.retry_intervals) == 8
    assert job.result_ttl == RESULT_TTL and job.failure_ttl == FAILURE_TTL
    assert connection.sismember("rq:queues", "rq:queue:bindery")
    if delay:
        assert job.get_status() == "scheduled"
        registry = queue.rq.scheduled_job_registry
        assert set(registry.get_job_ids()) == {job_id, f"rq-{job_id}"}
        assert connection.zscore(registry.key, job_id) == connection.zscore(
            registry.key, f"rq-{job_id}"
        )
        assert queue.rq.count == 0
    else:
        assert job.get_status() == "queued"
        assert queue.rq.job_ids == [job_id, f"rq-{job_id}"]


def test_a_duplicate_within_the_window_enqueues_nothing(connection):
    queue = JobQueue(connection, make_settings())
    job_id = job_catalog.event_job_id("token-2", "")
    first, created = queue.enqueue(
        job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id
    )
    before = connection.hgetall(f"rq:job:{job_id}")
    again, again_created = queue.enqueue(
        job_catalog.ON_MESSAGE_ADDED, {"at": 2.0}, kind="e", job_id=job_id
    )
    assert created and not again_created and again.id == first.id == job_id
    assert queue.rq.job_ids == [job_id]
    assert connection.hgetall(f"rq:job:{job_id}") == before
    assert 0 < connection.ttl(keys.job_seen(job_id)) <= DEDUP_TTL


def test_the_window_outlives_the_finished_job(connection):
    """The job's hash goes with its short result TTL; the compact key still refuses a redelivery."""
    queue = JobQueue(connection, make_settings())
    job_id = job_catalog.event_job_id("token-3", "")
    queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    connection.delete(f"rq:job:{job_id}", "rq:queue:bindery")  # finished, result expired
    _, created = queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    assert not created and queue.rq.count == 0


def test_a_key_an_older_release_wrote_still_refuses_the_id(connection):
    """Before `keys.job_seen`, the window was `bindery:dedup:<job id>`: an upgrade keeps it."""
    queue = JobQueue(connection, make_settings())
    job_id = job_catalog.event_job_id("token-5", "")
    connection.set(keys.dedup(job_id), 1, ex=DEDUP_TTL)  # its job finished and expired
    _, created = queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    assert not created and queue.rq.count == 0 and not connection.exists(keys.job_seen(job_id))
    connection.delete(keys.dedup(job_id))  # once the window is over
    _, created = queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    assert created and queue.rq.job_ids == [job_id]


def test_after_the_window_a_redelivery_is_accepted_again(connection):
    """Post-event jobs are idempotent and the ledger orders facts by their time, so an event that
    comes back after a day is applied again rather than lost."""
    queue = JobQueue(connection, make_settings())
    job_id = job_catalog.event_job_id("token-4", "")
    queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    connection.delete(f"rq:job:{job_id}", "rq:queue:bindery", keys.job_seen(job_id))
    _, created = queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {"at": 1.0}, kind="e", job_id=job_id)
    assert created and queue.rq.job_ids == [job_id]


def test_a_job_that_still_exists_is_a_duplicate_without_the_key(connection):
    """A failed job kept for replay, or one an older release enqueued (no de-duplication key)."""
    queue = JobQueue(connection, make_settings())
    queue.rq.enqueue(job_catalog.ON_MESSAGE_ADDED, kwargs={}, job_id="event-old")
    _, created = queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {}, kind="e", job_id="event-old")
    assert not created and queue.rq.job_ids == ["event-old"]


def test_adds_are_kept_as_briefly_as_other_results(connection):
    """A conflict's record carries what asking again needs: an add need not outlive its result."""
    queue = JobQueue(connection, make_settings())
    add, _ = queue.enqueue(job_catalog.PARTICIPANT_ADD, {}, kind="participant-add", job_id="add-1")
    plain, _ = queue.enqueue(job_catalog.STATE_CHANGE, {}, kind="state-change")
    add, plain = (Job.fetch(j.id, connection=connection) for j in (add, plain))
    assert add.result_ttl == RESULT_TTL and plain.result_ttl == RESULT_TTL


def test_no_retries_writes_no_retry_fields(connection):
    queue = JobQueue(connection, make_settings(max_retries=0))
    queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {}, kind="e", job_id="event-n")
    fields = connection.hgetall("rq:job:event-n")
    assert b"retries_left" not in fields and b"retry_intervals" not in fields
    assert json.loads(fields[b"meta"])["kind"] == "e"


def test_redis_down_raises_so_the_webhook_answers_503():
    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    queue = JobQueue(dead, make_settings())
    with pytest.raises(redis.RedisError):
        queue.enqueue(job_catalog.ON_MESSAGE_ADDED, {}, kind="e", job_id="event-d")
