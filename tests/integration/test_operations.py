"""Operations end to end: replaying failed jobs, cleaning up stale conversations, reconciling the
ledger, and the status snapshot, through the `bindery` command as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest
from prometheus_client import REGISTRY
from rq.job import Job
from rq.results import Result

from tests.conftest import make_settings
from tests.integration.conftest import conflicting_add, new_number
from tests.integration.stack import BINDERY, Process
from tests.integration.test_pipeline import participants_of
from workers import keys, policy_retry
from workers.queue import RESULT_TTL
from workers.runtime import Runtime

pytestmark = pytest.mark.integration

STACK = {
    "workers": 2,
    "BINDERY_MAX_RETRIES": "2",
    "BINDERY_STALE_AFTER": "1h",
    "BINDERY_CLEANUP_INTERVAL": "1h",
    "BINDERY_RECONCILE_INTERVAL": "0",
}
DUPLICATE_CODES = ("50416", "50437", "50433")


def bindery(stack, *args: str) -> str:
    result = subprocess.run(
        [BINDERY, *args], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def wait_for_ticks(stack, clocks, ticks: int, timeout: float = 30) -> None:
    """Until the clocks have written their heartbeat `ticks` more times (each tick renews its
    expiry: a rise of its remaining time is a tick; two ticks between looks count as one)."""
    seen, last = 0, stack.redis.pttl(keys.clock_heartbeat())
    deadline = time.monotonic() + timeout
    while seen < ticks:
        assert all(clock.alive() for clock in clocks), clocks[0].output()[-2000:]
        assert time.monotonic() < deadline, f"{seen} of {ticks} clock ticks seen"
        time.sleep(0.02)
        now = stack.redis.pttl(keys.clock_heartbeat())
        seen += now > last
        last = now


def test_failed_jobs_replay_to_the_expected_state_and_only_once(stack, twilio):
    conversations = [twilio.conversations.v1.conversations.create().sid for _ in range(5)]
    proxy = new_number()
    expected = {}
    stack.emulator_post("faults", {"error_rate_500": 1.0, "writes_only": True})
    job_ids = []
    for sid in conversations:
        customer = new_number()
        expected[sid] = Counter({("pair", customer, proxy): 1, ("identity", "agent-1"): 1})
        job_ids.append(stack.add(sid, address=customer, proxy_address=proxy))
        job_ids.append(stack.add(sid, identity="agent-1"))
    results = stack.wait(job_ids, timeout=60)
    assert {r["status"] for r in results} == {"failed"}
    assert all(r["attempt_count"] == 3 for r in results)  # BINDERY_MAX_RETRIES 2, then failed

    listed = json.loads(bindery(stack, "jobs", "failed", "--json"))
    assert {item["id"] for item in listed} == set(job_ids)
    assert {item["code"] for item in listed} == {20500}
    assert all("20500" in item["error"] and item["attempt_count"] == 3 for item in listed)
    assert not any(
        customer in json.dumps(listed)
        for (_, customer, _) in (k for c in expected.values() for k in c if k[0] == "pair")
    )
    only_one = json.loads(
        bindery(stack, "jobs", "failed", "--json", "--conversation", conversations[0])
    )
    assert len(only_one) == 2
    shown = json.loads(bindery(stack, "jobs", "show", job_ids[0]))
    assert len(shown["attempts"]) == 3 and shown["code"] == 20500

    dry = bindery(stack, "jobs", "replay", "--all", "--dry-run")
    assert "would replay 10 job(s)" in dry
    assert json.loads(bindery(stack, "jobs", "failed", "--json")) != []

    stack.emulator_post("faults", {})
    # One of them took effect meanwhile (say, another path added it): replay must not duplicate.
    twilio.conversations.v1.conversations(conversations[0]).participants.create(identity="agent-1")
    summary = bindery(stack, "jobs", "replay", "--all")
    assert "replayed 10 job(s): 10 requeued" in summary
    stack.wait(job_ids, timeout=60)
    stack.wait_idle()
    for sid in conversations:
        assert participants_of(twilio, sid) == expected[sid]
    stats = stack.emulator_stats()
    # The add made behind Bindery's back is found, not attempted again: the failed attempts left
    # agent-1 pending in the ledger, so the replay asked Twilio before creating.
    assert stats["errors"].get("50433", 0) == 0
    assert stats["errors"].get("50416", 0) == 0 and stats["errors"].get("50437", 0) == 0

    calls_before = stack.emulator_stats()["calls"]
    assert "nothing to do" in bindery(stack, "jobs", "replay", "--all")
    stack.wait_idle()  # nothing queued, running or scheduled that could still call Twilio
    assert stack.emulator_stats()["calls"] == calls_before


def test_replay_through_the_api(stack, twilio):
    sid = twilio.conversations.v1.conversations.create().sid
    stack.emulator_post("faults", {"error_rate_500": 1.0, "writes_only": True})
    [failed] = stack.wait([stack.add(sid, identity="agent-9")], timeout=60)
    assert failed["status"] == "failed"
    listing = stack.api.get(
        f"{stack.web_url}/api/v1/jobs", params={"status": "failed", "code": 20500}
    ).json()
    assert failed["id"] in [job["id"] for job in listing["jobs"]]
    stack.emulator_post("faults", {})
    response = stack.api.post(f"{stack.web_url}/api/v1/jobs/{failed['id']}/replay")
    assert response.status_code == 202
    [done] = stack.wait([failed["id"]])
    assert done["outcome"]["outcome"] == "added"
    again = stack.api.post(f"{stack.web_url}/api/v1/jobs/{failed['id']}/replay")
    assert again.status_code == 409
    bulk = stack.api.post(f"{stack.web_url}/api/v1/jobs/replay", json={"dry_run": True})
    assert bulk.status_code == 200 and failed["id"] not in bulk.json()["job_ids"]


def test_conflicts_are_listed_not_failed(stack, twilio):
    info, *_ = conflicting_add(stack, twilio)
    assert info["status"] == "finished" and info["outcome"]["outcome"] == "conflict"
    listed = json.loads(bindery(stack, "jobs", "conflicts", "--json"))
    assert info["id"] in [c["id"] for c in listed]
    assert info["id"] not in [
        j["id"] for j in json.loads(bindery(stack, "jobs", "failed", "--json"))
    ]


def test_a_conflict_is_asked_again_with_another_policy_after_its_job_expired(stack, twilio):
    """The worker records the add's request with the conflict: once RQ has let the finished add
    go (its result TTL, here by hand), asking again with `move` still works, from the record."""
    info, holder, newer, customer, proxy = conflicting_add(stack, twilio)
    assert info["outcome"]["outcome"] == "conflict"
    assert 0 < stack.redis.ttl(Job.key_for(info["id"])) <= RESULT_TTL
    assert stack.redis.delete(Job.key_for(info["id"]), Result.get_key(info["id"])) == 2

    rt = Runtime.build(make_settings(), stack.redis, calls_twilio=False)
    result, job = policy_retry.retry(rt, info["id"], "move")

    assert result == "enqueued"
    [moved] = stack.wait([job.id])
    assert moved["outcome"]["outcome"] == "conflict_resolved"
    assert moved["outcome"]["resolution"] == "move"
    assert participants_of(twilio, newer) == Counter({("pair", customer, proxy): 1})
    assert participants_of(twilio, holder) == Counter()
    listed = stack.api.get(f"{stack.web_url}/api/v1/jobs", params={"status": "conflict"}).json()
    assert info["id"] in [c["id"] for c in listed["jobs"]] and customer not in json.dumps(listed)


def test_cleanup_closes_idle_conversations_once(stack, twilio):
    conversations = twilio.conversations.v1.conversations
    idle = [conversations.create().sid for _ in range(6)]
    twilio.conversations.v1.conversations(idle[0]).update(state="inactive")
    stack.emulator_post("clock", {"advance_seconds": 2 * 3600})
    recent = [conversations.create().sid for _ in range(4)]

    dry = json.loads(bindery(stack, "cleanup", "--dry-run", "--json"))
    assert {s["conversation_sid"] for s in dry} == set(idle)
    assert all(conversations(sid).fetch().state != "closed" for sid in idle)

    updates_before = stack.emulator_stats()["calls"].get("conversations.update", 0)
    clocks = [
        Process(f"clock-{i}", [BINDERY, "clock", "--tick", "0.5"], stack.env) for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while any(conversations(sid).fetch().state != "closed" for sid in idle):
            assert time.monotonic() < deadline, clocks[0].output()[-2000:]
            time.sleep(0.5)
        wait_for_ticks(stack, clocks, 8)  # both clocks tick a few more times
        stack.wait_idle()
    finally:
        for clock in clocks:
            clock.stop()
    assert all(conversations(sid).fetch().state == "active" for sid in recent)
    updates = stack.emulator_stats()["calls"].get("conversations.update", 0) - updates_before
    assert updates == len(idle)  # each stale conversation closed once, by one of the two clocks
    assert stack.emulator_stats()["errors"].get("50377", 0) == 0


def test_reconcile_repairs_what_lost_webhooks_left_wrong(stack, twilio):
    conversations = twilio.conversations.v1.conversations
    a, b, c = (conversations.create().sid for _ in range(3))
    proxy = new_number()
    known, unknown = new_number(), new_number()
    # Through Bindery: the ledger knows `known` is held by A.
    [added] = stack.wait([stack.add(a, address=known, proxy_address=proxy)])
    assert added["outcome"]["outcome"] == "added"
    # Behind Bindery's back, with no webhooks configured: A is closed, B takes `unknown`.
    conversations(a).update(state="closed")
    conversations(b).participants.create(
        messaging_binding_address=unknown, messaging_binding_proxy_address=proxy
    )
    conversations(b).participants.create(identity="agent-3")

    ours = {a, b, c}  # earlier tests' conversations were wiped by the emulator reset: also reported

    def reconcile(*flags):
        report = json.loads(bindery(stack, "reconcile", "--json", *flags))
        return sorted(
            (d["conversation_sid"], d["kind"]) for d in report if d["conversation_sid"] in ours
        )

    expected = sorted(
        [(a, "closed"), (b, "state"), (b, "pair_missing"), (b, "identity_missing"), (c, "state")]
    )
    assert reconcile("--dry-run") == expected
    dry = json.loads(bindery(stack, "reconcile", "--dry-run", "--json"))
    assert not any(unknown in json.dumps(d) for d in dry)  # numbers masked
    assert reconcile("--dry-run") == expected  # a dry run repairs nothing
    assert reconcile() == expected
    assert reconcile() == []  # repaired

    calls_before = stack.emulator_stats()["calls"]
    # The ledger now knows A let `known` go: adding it to C is a plain add.
    [moved] = stack.wait([stack.add(c, address=known, proxy_address=proxy, policy="reject")])
    assert moved["outcome"]["outcome"] == "added"
    # And that B holds `unknown`: a conflict, decided without attempting the add.
    [refused] = stack.wait([stack.add(c, address=unknown, proxy_address=proxy, policy="reject")])
    assert refused["outcome"]["outcome"] == "conflict" and refused["outcome"]["holder"] == b
    calls = stack.emulator_stats()["calls"]
    assert calls.get("participants.create", 0) - calls_before.get("participants.create", 0) == 1
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def test_status(stack, twilio):
    snapshot = json.loads(bindery(stack, "status", "--json"))
    assert snapshot["queue"]["queued"] == 0
    assert len(snapshot["workers"]) == 2
    assert all(w["seconds_since_heartbeat"] < 120 for w in snapshot["workers"])
    assert "duplicate_attempts_avoided" in snapshot["counters"] or snapshot["counters"] is not None
    text = bindery(stack, "status")
    assert "workers:   2" in text and "ledger:" in text


def test_the_gateway_lists_every_conversation_once_with_one_call_a_page(stack, twilio):
    """Over HTTP with the official client: 250 conversations are 3 pages of 100, each asked for
    once, and each conversation is yielded once (the cleanup scan and reconcile walk this)."""
    from workers.settings import Settings

    created = {twilio.conversations.v1.conversations.create().sid for _ in range(250)}
    rt = Runtime.build(Settings.from_env(stack.env))
    counted = {"operation": "conversation.list", "code": "ok"}

    def metric() -> float:
        return REGISTRY.get_sample_value("bindery_twilio_calls_total", counted) or 0.0

    before, metric_before = stack.emulator_stats()["calls"].get("conversations.list", 0), metric()
    listed = [c.sid for c in rt.twilio.conversations("active")]
    calls = stack.emulator_stats()["calls"].get("conversations.list", 0) - before
    assert len(listed) == len(created) and set(listed) == created
    assert calls == 3
    assert metric() - metric_before == 3  # Bindery's own count: calls, not conversations
