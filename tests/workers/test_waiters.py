"""Waiting for a busy lock in its line, not in a worker; woken by the holder, through RQ's own
scheduled registry and queue (real RQ on fakeredis)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from workers import keys, waiters
from workers.locks import LockBusy, Locks, Parked
from workers.waiters import Waiter

CONV = keys.conversation_lock("CH" + "1" * 32)
PAIR = keys.pair_lock("+15551230001|+15550001111")
LINE = keys.lock_line(CONV)


def queue(connection) -> Queue:
    return Queue(keys.QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def parked_job(connection, job_id: str, due_in: float = 30) -> Job:
    """A job as RQ leaves it once it returned `rq.Retry`: scheduled, not queued."""
    q = queue(connection)
    job = q.enqueue("tests.workers.test_waiters.noop", job_id=job_id)
    connection.lrem(q.key, 0, job_id)
    q.schedule_job(job, datetime.now(UTC) + timedelta(seconds=due_in))
    return job


def noop() -> str:
    return "done"


def locks(connection) -> Locks:
    return Locks(connection, ttl=30, wait=0, renew=False)


def test_a_waiter_joins_the_line_and_gives_back_what_it_took(fake_redis):
    holder = locks(fake_redis)
    holder.acquire([PAIR])
    waiting = locks(fake_redis)
    with pytest.raises(Parked) as parked:
        waiting.acquire([CONV, PAIR], waiter=Waiter("job-1"))
    assert parked.value.lock == PAIR and parked.value.place == 1
    assert fake_redis.lrange(keys.lock_line(PAIR), 0, -1) == [b"job-1"]
    assert not fake_redis.exists(CONV)  # the conversation's lock, taken first, was given back
    # A job that may not wait (no waiter) is told the lock is busy, as before, and joins nothing.
    with pytest.raises(LockBusy):
        locks(fake_redis).acquire([PAIR])
    assert fake_redis.llen(keys.lock_line(PAIR)) == 1


def test_a_waiter_joins_once_and_keeps_its_place(fake_redis):
    locks(fake_redis).acquire([CONV])
    for job_id in ("a", "b", "a"):  # a's fallback ran while b waited: a keeps its place
        with pytest.raises(Parked):
            locks(fake_redis).acquire([CONV], waiter=Waiter(job_id))
    assert fake_redis.lrange(LINE, 0, -1) == [b"a", b"b"]
    with pytest.raises(Parked) as parked:  # woken, it found the lock taken again: back in front
        locks(fake_redis).acquire([CONV], waiter=Waiter("c", waited_before=True))
    assert parked.value.place == 1 and fake_redis.lrange(LINE, 0, -1) == [b"c", b"a", b"b"]
    assert 0 < fake_redis.pttl(LINE) <= waiters.line_ttl_ms(30)


def test_only_the_first_lock_of_a_job_is_waited_for_in_line(fake_redis):
    locks(fake_redis).acquire([PAIR])
    job = locks(fake_redis)
    job.acquire([CONV], waiter=Waiter("j"))
    with pytest.raises(LockBusy):  # it holds a lock already: waiting in line would give it up
        job.acquire([PAIR], waiter=Waiter("j"))
    assert not fake_redis.exists(keys.lock_line(PAIR))


def test_the_holder_wakes_the_first_in_line_to_the_front_of_the_queue(fake_redis):
    holder = locks(fake_redis)
    holder.acquire([CONV])
    for job_id in ("first", "second"):
        with pytest.raises(Parked):
            locks(fake_redis).acquire([CONV], waiter=Waiter(job_id))
        parked_job(fake_redis, job_id)
    queue(fake_redis).enqueue("tests.workers.test_waiters.noop", job_id="other")

    holder.release()

    q = queue(fake_redis)
    assert holder.woken == [(CONV, "first:woken")]
    assert q.get_job_ids() == ["first", "other"]  # at the front
    assert q.scheduled_job_registry.get_job_ids() == ["second"]
    assert Job.fetch("first", fake_redis, serializer=JSONSerializer).get_status() == "queued"
    assert fake_redis.lrange(LINE, 0, -1) == [b"second"]
    # The woken job takes the lock and leaves the line; its release wakes the next.
    woken = locks(fake_redis)
    woken.acquire([CONV], waiter=Waiter("first", waited_before=True))
    woken.release()
    assert woken.woken == [(CONV, "second:woken")] and not fake_redis.exists(LINE)


def test_a_waiter_its_fallback_brought_back_leaves_the_line(fake_redis):
    holder = locks(fake_redis)
    holder.acquire([CONV])
    with pytest.raises(Parked):
        locks(fake_redis).acquire([CONV], waiter=Waiter("late"))
    fake_redis.delete(CONV)  # the holder died; its lease ran out
    locks(fake_redis).acquire([CONV], waiter=Waiter("late", waited_before=True))
    assert not fake_redis.exists(LINE)


def test_a_job_gone_is_skipped_and_the_next_woken(fake_redis):
    holder = locks(fake_redis)
    holder.acquire([CONV])
    for job_id in ("deleted", "next"):
        with pytest.raises(Parked):
            locks(fake_redis).acquire([CONV], waiter=Waiter(job_id))
    parked_job(fake_redis, "next")
    holder.release()
    assert holder.woken == [(CONV, "next:woken")]
    assert queue(fake_redis).get_job_ids() == ["next"]


def test_a_job_about_to_be_run_by_rqs_scheduler_is_left_to_it(fake_redis):
    """Moving it too could queue it twice (RQ's scheduler reads, then moves, what is due)."""
    parked_job(fake_redis, "soon", due_in=1)
    assert waiters.Waker(fake_redis).wake("soon") == "due"
    assert queue(fake_redis).scheduled_job_registry.get_job_ids() == ["soon"]
    assert queue(fake_redis).get_job_ids() == []


def test_a_job_queued_running_or_done_is_not_moved(fake_redis):
    job = queue(fake_redis).enqueue("tests.workers.test_waiters.noop", job_id="queued")
    assert waiters.Waker(fake_redis).wake("queued") == "awake"
    assert queue(fake_redis).get_job_ids() == ["queued"]
    job.set_status(JobStatus.FINISHED)
    assert waiters.Waker(fake_redis).wake("queued") == "awake"


def test_a_job_still_leaving_its_worker_is_waited_for_briefly(fake_redis):
    job = queue(fake_redis).enqueue("tests.workers.test_waiters.noop", job_id="leaving")
    fake_redis.lrem(queue(fake_redis).key, 0, "leaving")
    job.set_status(JobStatus.STARTED)
    started = time.monotonic()
    assert waiters.Waker(fake_redis).wake("leaving") == "leaving"
    assert time.monotonic() - started < 1.0


def test_a_job_that_returns_retry_is_scheduled_without_a_failed_attempt(fake_redis):
    """What RQ does with `waiters.retry`: scheduled at the fallback, retries for failures left."""
    q = queue(fake_redis)
    job = q.enqueue("tests.workers.test_waiters.wait_once", job_id="w", retry=None)
    SimpleWorker([q], connection=fake_redis, serializer=JSONSerializer).work(burst=True)
    job = Job.fetch("w", fake_redis, serializer=JSONSerializer)
    assert job.get_status() == "scheduled" and job.number_of_retries == 1
    assert q.scheduled_job_registry.get_job_ids() == ["w"]
    assert q.failed_job_registry.get_job_ids() == []
    due = q.scheduled_job_registry.get_scheduled_time(job).timestamp()
    assert due >= time.time() + waiters.fallback_after(30) - 2


def wait_once():
    return waiters.retry(30)


# -- in the world: two adds to one conversation, the second waits in line ---------------------


@pytest.fixture
def world():
    from tests.workers.world import World

    w = World()
    yield w
    w.close()


def test_an_add_behind_a_busy_conversation_waits_in_line_and_is_woken(world):
    from workers.participants import add_participant

    sid = world.conversation()
    rt = world.rt

    def add_as(job_id: str, identity: str, waited: bool = False):
        def run():
            with waiters.waiting_as(job_id, waited):
                try:
                    outcome = add_participant(rt, sid, identity=identity)
                except Parked:
                    world.waiting.ended(job_id, waited=True, schedule=False)
                    raise
                world.waiting.ended(job_id, waited=False)
                return outcome

        world.waiting.started(job_id, {"conversation_sid": sid, "identity": identity})
        return world.start(job_id, run)

    first = add_as("first", "agent-1")
    first.run_until("twilio:participant.create")  # holds the conversation's lock
    second = add_as("second", "agent-2")
    assert isinstance(second.finish(), Parked)  # left its worker: no waiting inside it
    world.waiting.schedule("second")  # what RQ does with the Retry it returned
    assert first.finish()["outcome"] == "added"

    assert world.waiting.woken() == ["second"]  # the holder moved it to the front of the queue
    world.waiting.take_woken("second")
    assert add_as("second", "agent-2", waited=True).finish()["outcome"] == "added"
    assert {p.identity for p in world.participants(sid)} == {"agent-1", "agent-2"}
    assert world.waiting.scheduled() == [] and world.waiting.lines() == {}


def test_post_events_state_changes_and_timers_behind_a_busy_conversation_wait_in_line(world):
    """Not only adds: every job a worker runs that finds its conversation's lock held leaves its
    worker, having written nothing (it runs again from the start when woken)."""
    from workers import post_events, states, timers

    sid = world.conversation()
    rt = world.rt
    at = rt.clock.now()
    rt.ledger.record_conversation(sid, "active", at)
    holder = rt.locks()
    holder.acquire([keys.conversation_lock(sid)])
    jobs = {
        "post-event": lambda: post_events.on_conversation_state_updated(
            rt, sid, "inactive", at + 1
        ),
        "state": lambda: states.change_state(rt, sid, "closed", at + 1),
        "timer": lambda: timers.close_if_inactive(rt, sid, at),
    }
    for job_id, run in jobs.items():
        with waiters.waiting_as(job_id), pytest.raises(Parked):
            run()
    line = keys.lock_line(keys.conversation_lock(sid))
    assert [i.decode() for i in rt.connection.lrange(line, 0, -1)] == list(jobs)
    assert rt.ledger.conversation(sid).state == "active"  # none of them wrote anything
    assert world.state(sid) == "active"
    holder.release()
