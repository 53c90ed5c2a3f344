"""Enqueueing: options as settings say, de-duplication by id."""

import fakeredis

from tests.conftest import make_settings
from workers.queue import JobQueue


def test_no_retries_is_a_setting_rq_accepts():
    """BINDERY_MAX_RETRIES=0 made every enqueue fail (RQ refuses Retry(max=0))."""
    queue = JobQueue(fakeredis.FakeRedis(), make_settings(max_retries=0))
    job, created = queue.enqueue("workers.jobs.on_message_added", {"at": 1.0}, kind="event")
    assert created and job.retries_left is None


def test_a_job_id_is_enqueued_once():
    queue = JobQueue(fakeredis.FakeRedis(), make_settings())
    first, created = queue.enqueue("workers.jobs.on_message_added", {}, kind="e", job_id="x-1")
    again, again_created = queue.enqueue(
        "workers.jobs.on_message_added", {}, kind="e", job_id="x-1"
    )
    assert created and not again_created and again.id == first.id
