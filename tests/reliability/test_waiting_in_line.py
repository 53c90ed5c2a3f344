"""Adds waiting in a busy conversation's line, their holder's worker SIGKILLed mid-call.

The waiting adds hold no worker (they are scheduled in RQ, in the lock's line); nobody lets the
lock go, so nobody wakes them: the lease runs out, their fallback runs them, and each takes effect
exactly once, as does the killed holder's add (requeued by RQ's maintenance).
"""

from __future__ import annotations

import pytest

from tests.reliability.conftest import client_for
from tests.reliability.harness import job_field, kill_worker, participants_of, wait_for
from workers import keys

pytestmark = pytest.mark.integration

STACK = {"workers": 2, "BINDERY_JOB_TIMEOUT": "5s", "BINDERY_LOCK_TTL": "2s"}
WAITING = 3


def test_adds_waiting_behind_a_killed_holder_each_take_effect_once(stack):
    stack.reset()
    twilio = client_for(stack)
    sid = twilio.conversations.v1.conversations.create().sid

    def creates() -> int:
        return stack.emulator_stats()["calls"].get("participants.create", 0)

    stack.faults(latency_ms=1500)
    holder = stack.add(sid, identity="agent-holder")
    wait_for(lambda: creates() >= 1, 30, "the holder's create to reach Twilio")
    waiting = [stack.add(sid, identity=f"agent-{n}") for n in range(WAITING)]
    wait_for(
        lambda: all(job_field(stack.redis, j, "status") == "scheduled" for j in waiting),
        30,
        "the adds behind it to wait in line, out of their workers",
    )
    line = keys.lock_line(keys.conversation_lock(sid))
    assert stack.redis.llen(line) == WAITING
    for pid in stack.worker_pids():  # the holder's worker among them, mid-call
        kill_worker(stack.redis, pid)
    stack.faults()

    results = {info["id"]: info for info in stack.wait([holder, *waiting], timeout=180)}
    for job_id in waiting:
        info = results[job_id]
        assert info["status"] == "finished" and info["outcome"]["outcome"] == "added", info
        assert info["attempt_count"] == 1, info  # waiting was no failed attempt
    assert results[holder]["status"] in ("finished", "failed"), results[holder]
    held = participants_of(twilio, sid)
    expected = {("identity", f"agent-{n}") for n in range(WAITING)}
    assert expected <= set(held) and all(n == 1 for n in held.values()), held
    errors = stack.emulator_stats()["errors"]
    assert errors.get("50433", 0) == 0, errors
