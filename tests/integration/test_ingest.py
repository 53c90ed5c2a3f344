"""Jobs enqueued in one round trip (`workers/ingest.py`), run by real `rq worker` processes: a
post-event accepted once and its redelivery refused within the window; an add (API, with an
idempotency key) retried by RQ, failed into RQ's failed-job registry and replayed by
`bindery jobs replay`; and what is left in Redis once the jobs are done."""

from __future__ import annotations

import subprocess
from urllib.parse import urlencode

import pytest
import requests
from rq import Queue
from rq.registry import FailedJobRegistry
from twilio.request_validator import RequestValidator

from devstack.processes import BINDERY, wait_for
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.conftest import new_number
from workers import keys
from workers.queue import DEDUP_TTL, RESULT_TTL

pytestmark = pytest.mark.integration

MAX_RETRIES = 2
STACK = {"BINDERY_MAX_RETRIES": str(MAX_RETRIES)}


def post_event(stack, params: dict, token: str) -> requests.Response:
    url = f"{stack.web_url}/twilio/conversations/post"
    signature = RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(url, params)
    return requests.post(
        url,
        data=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": token,
        },
        timeout=10,
    )


def test_a_post_event_runs_once_and_its_redelivery_enqueues_nothing(stack, twilio):
    conversation = twilio.conversations.v1.conversations.create().sid
    params = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "EventType": "onConversationAdded",
        "ConversationSid": conversation,
        "State": "active",
        "DateCreated": "2026-01-01T00:00:00Z",
    }
    first = post_event(stack, params, f"token-{conversation}")
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    job_id = first.json()["job_id"]
    [info] = stack.wait([job_id])
    assert info["status"] == "finished"
    assert stack.redis.hget(keys.conversation(conversation), "state") == b"active"

    again = post_event(stack, {**params, "RetryCount": "1"}, f"token-{conversation}")
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "accepted", "job_id": job_id, "duplicate": True}
    queue = Queue(keys.QUEUE_NAME, connection=stack.redis)
    assert job_id not in queue.job_ids and queue.scheduled_job_registry.count == 0
    assert stack.job(job_id)["status"] == "finished"  # not run again
    assert 0 < stack.redis.ttl(keys.job_seen(job_id)) <= DEDUP_TTL
    assert 0 < stack.redis.ttl(f"rq:job:{job_id}") <= RESULT_TTL


def test_an_add_is_retried_failed_into_rqs_registry_and_replayed(stack, twilio):
    conversation = twilio.conversations.v1.conversations.create().sid
    stack.emulator_post("faults", {"error_rate_500": 1.0})
    try:
        job_id = stack.add(
            conversation,
            address=new_number(),
            proxy_address=new_number(),
            idempotency_key=f"ingest-{conversation}",
        )
        again = stack.api.post(
            f"{stack.web_url}/api/v1/conversations/{conversation}/participants",
            json={"identity": "someone-else", "idempotency_key": f"ingest-{conversation}"},
            timeout=10,
        )
        assert again.json() == {"job_id": job_id, "duplicate": True}
        [info] = stack.wait([job_id], timeout=90)
    finally:
        stack.emulator_post("faults", {})
    assert info["status"] == "failed"
    assert len(info["attempts"]) == MAX_RETRIES + 1  # RQ's Retry ran every attempt
    registry = FailedJobRegistry(keys.QUEUE_NAME, connection=stack.redis)
    assert job_id in registry.get_job_ids()
    listed = subprocess.run(
        [BINDERY, "jobs", "failed"], env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert job_id in listed.stdout, listed.stderr

    replayed = subprocess.run(
        [BINDERY, "jobs", "replay", job_id],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    wait_for(lambda: stack.job(job_id)["status"] == "finished", 60, "the replayed add", 0.2)
    assert job_id not in registry.get_job_ids()
    [participant] = twilio.conversations.v1.conversations(conversation).participants.list()
    assert participant.messaging_binding["address"]
