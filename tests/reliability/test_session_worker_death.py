"""Worker death while sessions open: RQ worker processes SIGKILLed in the middle of session jobs.

A killed job's reservations lapse by themselves (BINDERY_RESERVATION_TTL), RQ's own maintenance
requeues the job, and its retry finds the conversation it made (by its unique name) and goes on:
every session ends open or failed, no two open sessions share a pair, each session has one
conversation at most, no duplicate binding is attempted, and no reservation is left behind.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import new_number
from tests.integration.test_pipeline import DUPLICATE_CODES
from tests.reliability.harness import executions, kill_worker, worker_name

pytestmark = pytest.mark.integration

STACK = {
    "workers": 4,
    # As in test_worker_death.py: a dead worker's job is requeued once its heartbeat (the job
    # timeout + 60 s) runs out; its locks expire with their TTL.
    "BINDERY_JOB_TIMEOUT": "5s",
    "BINDERY_LOCK_TTL": "5s",
    "BINDERY_RESERVATION_TTL": "10s",
}
KILLS = 6
SESSIONS = 40


def test_sessions_survive_workers_killed_mid_job(stack, twilio):
    rng = random.Random(5)
    numbers = [new_number() for _ in range(5)]
    answer = stack.api.put(
        f"{stack.web_url}/api/v1/pools/deaths",
        json={"numbers": [{"number": n} for n in numbers]},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    customers = [new_number() for _ in range(10)]
    bodies = [
        {
            "pool": "deaths",
            "participants": [{"address": c} for c in rng.sample(customers, 2)]
            + [{"identity": "dispatch"}],
        }
        for _ in range(SESSIONS)
    ]
    stack.faults(latency_ms=60)  # sessions spend longer in Twilio calls: kills land mid-job

    def create(body):
        response = stack.api.post(f"{stack.web_url}/api/v1/sessions", json=body, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()["session_id"]

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, bodies))
    kills, abandoned = 0, []
    deadline = time.monotonic() + 60
    while kills < KILLS and time.monotonic() < deadline:
        busy = [
            pid
            for pid in stack.worker_pids()
            if any(
                j.startswith("session-open-")
                for j in executions(stack.redis, worker_name(stack.redis, pid))
            )
        ]
        if busy:
            abandoned += kill_worker(stack.redis, rng.choice(busy))
            kills += 1
            time.sleep(0.7)
        else:
            time.sleep(0.05)
    stack.faults()
    assert kills and any(j.startswith("session-open-") for j in abandoned), "no kill hit a session"

    found = {}
    deadline = time.monotonic() + 240
    while len(found) < len(ids):
        assert time.monotonic() < deadline, f"sessions still pending: {set(ids) - set(found)}"
        for session_id in ids:
            if session_id in found:
                continue
            shown = stack.api.get(f"{stack.web_url}/api/v1/sessions/{session_id}", timeout=10)
            if shown.json()["status"] in ("open", "failed"):
                found[session_id] = shown.json()
        time.sleep(0.5)

    opened = [s for s in found.values() if s["status"] == "open"]
    assert opened, Counter(s["status"] for s in found.values())
    for s in found.values():
        if s["status"] == "failed":
            assert s["error_code"] == 80206, s
    pairs = [
        (p["address"], p["proxy_address"])
        for s in opened
        for p in s["participants"]
        if "address" in p
    ]
    assert len(pairs) == len(set(pairs)), "a pair was given to two open sessions"
    for s in opened:
        held = {
            (p.messaging_binding["address"], p.messaging_binding["proxy_address"])
            for p in twilio.conversations.v1.conversations(
                s["conversation_sid"]
            ).participants.list()
            if p.messaging_binding
        }
        assert held == {
            (p["address"], p["proxy_address"]) for p in s["participants"] if "address" in p
        }
    made = Counter(
        c.unique_name for c in twilio.conversations.v1.conversations.list() if c.unique_name
    )
    assert all(count == 1 for count in made.values()), made  # one conversation per session
    stats = stack.emulator_stats()
    for code in DUPLICATE_CODES:
        assert stats["errors"].get(code, 0) == 0, stats

    time.sleep(11)  # any reservation a killed job left has lapsed by now
    assert not stack.redis.keys("bindery:reservation:*")
    shown = stack.api.get(f"{stack.web_url}/api/v1/pools/deaths", timeout=10).json()
    assert sum(n["sessions"] for n in shown["numbers"]) == sum(
        len({p["proxy_address"] for p in s["participants"] if "address" in p}) for s in opened
    )
    print(
        f"session worker death: {kills} workers killed, {len(abandoned)} jobs abandoned, "
        f"{len(opened)} sessions open, {len(found) - len(opened)} exhausted, "
        f"{len(made)} conversations made, Twilio errors {stats['errors']}"
    )
