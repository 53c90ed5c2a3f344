"""Redis out of memory (`maxmemory`, `noeviction`): enqueues are refused with 503, never silently
dropped. Every webhook answered 200 and every API request answered 202 has its job in the queue,
and each one runs once memory is available again."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator.defaults import DEFAULT_ACCOUNT_SID
from tests.integration.stack import BINDERY
from tests.reliability.harness import signed_post

pytestmark = pytest.mark.integration

STACK = {"workers": 1, "redis_args": ("--maxmemory-policy", "noeviction")}
HEADROOM = 1536 * 1024
"""Bytes of Redis memory left: some hundreds of jobs, once the connections have taken theirs."""


def test_a_full_redis_refuses_with_503_and_drops_nothing(stack, twilio):
    conversations = [twilio.conversations.v1.conversations.create().sid for _ in range(5)]
    # No workers while Redis is full: every accepted job must still be waiting in the queue.
    os.killpg(stack.pool_pid, signal.SIGTERM)
    stack.workers.popen.wait(20)
    used = int(stack.redis.info("memory")["used_memory"])
    stack.redis.config_set("maxmemory", used + HEADROOM)

    url = f"{stack.web_url}/twilio/conversations/post"

    def send(n: int) -> tuple[int, str]:
        if n % 4 == 0:  # one in four through the API, the rest as webhooks
            response = stack.api.post(
                f"{stack.web_url}/api/v1/conversations/{conversations[n % 5]}/participants",
                json={"identity": f"agent-{n}"},
                timeout=30,
            )
        else:
            form = {
                "AccountSid": DEFAULT_ACCOUNT_SID,
                "EventType": "onConversationAdded",
                "ConversationSid": "CH" + uuid.uuid4().hex,
                "State": "active",
                "DateCreated": "2026-11-26T20:00:00Z",
            }
            response, _ = signed_post(url, form)
        job_id = response.json().get("job_id", "") if response.status_code in (200, 202) else ""
        return response.status_code, job_id

    answers: list[tuple[int, str]] = []
    with ThreadPoolExecutor(8) as pool:
        n = 0
        while sum(s == 503 for s, _ in answers) < 40:
            assert n < 4000, Counter(s for s, _ in answers)
            answers += pool.map(send, range(n, n + 40))
            n += 40
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 202, 503}, statuses
    assert statuses[200] and statuses[202], statuses

    accepted = [job for status, job in answers if status in (200, 202)]
    queued = {j.decode() for j in stack.redis.lrange("rq:queue:bindery", 0, -1)}
    dropped = [j for j in accepted if j not in queued or not stack.redis.exists(f"rq:job:{j}")]
    assert not dropped, f"{len(dropped)} of {len(accepted)} accepted requests have no queued job"

    # Memory again: the same jobs run, nothing was half-written.
    stack.redis.config_set("maxmemory", 0)
    workers = stack._start("worker-again", [BINDERY, "worker", "--processes", "2"])
    results = stack.wait(accepted, timeout=120)
    assert {r["status"] for r in results} == {"finished"}, Counter(r["status"] for r in results)
    assert workers.alive()
    print(
        f"\nredis full: {len(answers)} requests, answers {dict(statuses)}, "
        f"{len(accepted)} accepted and all queued, then all finished"
    )
