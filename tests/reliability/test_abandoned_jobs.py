"""A dead worker's job must be retried within 2 minutes: what decides it.

RQ's maintenance (StartedJobRegistry.cleanup) requeues a job once its execution's heartbeat has
expired. Under SimpleWorker that heartbeat lasts the job timeout + 60 s (nothing renews it during a
job), and maintenance runs in a worker's loop every MAINTENANCE_INTERVAL, but only when the loop
turns: an idle worker sits in BLPOP for `worker_ttl - 15` s. The storm in test_worker_death.py
shows requeueing with a 10 s job timeout while traffic flows; these tests pin the defaults and the
quiet queue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import redis
from rq import Queue, Retry
from rq.executions import Execution
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from tests.integration.stack import PrivateRedis, Process
from tests.reliability.harness import wait_for

pytestmark = pytest.mark.integration

WITHIN = 120
"""Seconds within which a dead worker's job must be back in the queue."""
SCHEDULER_SLACK = 3
"""Seconds a requeued job may wait on top: its first retry interval (1-2 s) and the scheduler's
1 s poll."""

WORKER_FIGURES = """
import json, fakeredis
from rq.serializers import JSONSerializer
from workers.queue import JobQueue
from workers.settings import Settings
from workers.worker import BinderyWorker
connection = fakeredis.FakeRedis()
settings = Settings.from_env(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="figures")
queue = JobQueue(connection, settings)
job, _ = queue.enqueue(
    "workers.jobs.on_message_added", {"conversation_sid": "CH" + "0" * 32, "at": 0.0}, kind="event"
)
worker_class = BinderyWorker.with_settings(settings)
worker = worker_class([queue.rq], connection=connection, serializer=JSONSerializer)
print(json.dumps({
    "heartbeat_ttl": worker.get_heartbeat_ttl(job),
    "maintenance_interval": worker.maintenance_interval,
    "dequeue_timeout": worker.dequeue_timeout,
}))
"""


@pytest.fixture(scope="module")
def default_figures() -> dict:
    """What a BinderyWorker with every setting at its default uses (in a process of its own: the
    worker configures logging for its process)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    result = subprocess.run(
        [sys.executable, "-c", WORKER_FIGURES],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_the_defaults_a_dead_workers_job_is_requeued_within_two_minutes(default_figures):
    worst = default_figures["heartbeat_ttl"] + default_figures["maintenance_interval"]
    assert worst + SCHEDULER_SLACK <= WITHIN, default_figures


# -- a real worker, idle or not ---------------------------------------------------------------

MAINTENANCE = 2
"""Seconds between maintenance passes for these tests (the only setting they change)."""
WORKER = f"""
import os
from rq import Queue
from rq.serializers import JSONSerializer
from workers.runtime import connect
from workers.settings import Settings
from workers.worker import BinderyWorker
connection = connect(os.environ["REDIS_URL"])
queue = Queue("bindery", connection=connection, serializer=JSONSerializer)
settings = Settings.from_env(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="idle")
worker = BinderyWorker.with_settings(settings)(
    [queue], connection=connection, serializer=JSONSerializer, maintenance_interval={MAINTENANCE}
)
worker.work(with_scheduler=False)
"""


@pytest.fixture
def idle_worker():
    """A private Redis and one BinderyWorker, idle (its first maintenance pass done)."""
    server = PrivateRedis()
    connection = redis.Redis.from_url(server.url)
    worker = Process(
        "worker", [sys.executable, "-c", WORKER], {**os.environ, "REDIS_URL": server.url}
    )

    def idle() -> bool:
        keys = [k for k in connection.smembers("rq:workers:bindery")]
        return any(connection.hget(k, "state") == b"idle" for k in keys)

    try:
        wait_for(idle, 30, "the worker to start:\n" + worker.output()[-2000:])
        time.sleep(0.5)
        yield connection
    finally:
        worker.stop()
        connection.close()
        server.stop()


def abandon(connection: redis.Redis) -> str:
    """A job in the state a SIGKILLed worker leaves: started, its heartbeat about to expire."""
    queue = Queue("bindery", connection=connection, serializer=JSONSerializer)
    job = queue.create_job(
        "workers.jobs.record_message",
        kwargs={"conversation_sid": "CH" + "a" * 32, "at": 1.0},
        job_id="abandoned",
        retry=Retry(max=3, interval=1),
        timeout=10,
    )
    job.save()
    with connection.pipeline() as pipeline:
        Execution.create(job, ttl=1, pipeline=pipeline, worker_name="dead-worker")
        job.set_status(JobStatus.STARTED, pipeline=pipeline)
        pipeline.execute()
    return job.id


def requeued(connection: redis.Redis, job_id: str) -> bool:
    """RQ's cleanup took the job back: one retry used, the dead worker's execution dropped."""
    return connection.hget(f"rq:job:{job_id}", "retries_left") == b"2"


def test_a_dead_workers_job_is_requeued_while_traffic_flows(idle_worker):
    job_id = abandon(idle_worker)
    time.sleep(MAINTENANCE + 1)
    queue = Queue("bindery", connection=idle_worker, serializer=JSONSerializer)
    queue.enqueue(
        "workers.jobs.record_message", kwargs={"conversation_sid": "CH" + "b" * 32, "at": 2.0}
    )
    wait_for(lambda: requeued(idle_worker, job_id), 3 * MAINTENANCE + 5, "the job to be requeued")


def test_a_dead_workers_job_is_requeued_on_a_quiet_queue(idle_worker):
    job_id = abandon(idle_worker)
    wait_for(lambda: requeued(idle_worker, job_id), 3 * MAINTENANCE + 5, "the job to be requeued")
