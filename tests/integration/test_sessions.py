"""Masked-number sessions end to end: the API on real gunicorn, the jobs on real RQ workers, the
emulator over HTTP through the official client. A storm of concurrent session creates for
overlapping customers over a small pool: every open session's pairs distinct, no duplicate binding
attempted, exhaustion answered with the clear error; then one session's life through the API
(open, read, closed by DELETE, closed by Twilio's own timer)."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import new_number
from tests.integration.test_pipeline import DUPLICATE_CODES, configure_webhooks
from workers.addresses import mask

pytestmark = pytest.mark.integration

STACK = {"workers": 4}


def put_pool(stack, name: str, numbers: list[str]) -> None:
    answer = stack.api.put(
        f"{stack.web_url}/api/v1/pools/{name}",
        json={"numbers": [{"number": n} for n in numbers]},
        timeout=10,
    )
    assert answer.status_code in (200, 201), answer.text


def create(stack, body: dict) -> dict:
    answer = stack.api.post(f"{stack.web_url}/api/v1/sessions", json=body, timeout=10)
    assert answer.status_code == 202, answer.text
    return answer.json()


def session(stack, session_id: str) -> dict:
    answer = stack.api.get(f"{stack.web_url}/api/v1/sessions/{session_id}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def settled(stack, session_id: str, statuses=("open", "failed"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = session(stack, session_id)
        if found["status"] in statuses:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"session still {found['status']}: {found}")
        time.sleep(0.2)


def pairs_in_twilio(twilio, conversation_sid: str) -> set[tuple[str, str]]:
    return {
        (p.messaging_binding["address"], p.messaging_binding["proxy_address"])
        for p in twilio.conversations.v1.conversations(conversation_sid).participants.list()
        if p.messaging_binding and p.messaging_binding.get("proxy_address")
    }


def metric(stack, name: str) -> float:
    text = stack.api.get(f"{stack.web_url}/metrics", timeout=10).text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_a_storm_of_sessions_never_gives_a_pair_twice(stack, twilio):
    rng = random.Random(12)
    numbers = [new_number() for _ in range(4)]
    put_pool(stack, "storm", numbers)
    customers = [new_number() for _ in range(12)]
    # Pairs another app bound through the REST API, without webhooks: the ledger cannot know
    # them, and the sessions' adds find them in Twilio (the verifying ledger mode).
    behind = set()
    for customer in customers[:6]:
        other = twilio.conversations.v1.conversations.create().sid
        proxy = rng.choice(numbers)
        twilio.conversations.v1.conversations(other).participants.create(
            messaging_binding_address=customer, messaging_binding_proxy_address=proxy
        )
        behind.add((customer, proxy))
    bodies = []
    for _ in range(80):
        a, b = rng.sample(customers, 2)
        bodies.append(
            {"pool": "storm", "participants": [{"address": a}, {"address": b}, {"identity": "ops"}]}
        )
    # The same unique name sent four times at once is one session.
    bodies += [{**bodies[0], "unique_name": "twice"}] * 4
    exhausted_before = metric(stack, "bindery_pool_exhausted_total")

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda body: create(stack, body), bodies))
    ids = list(dict.fromkeys(a["session_id"] for a in answers))
    assert len(ids) == 81
    stack.wait([a["job_id"] for a in answers], timeout=300)
    found = [settled(stack, i) for i in ids]

    opened = [s for s in found if s["status"] == "open"]
    failed = [s for s in found if s["status"] == "failed"]
    assert opened and failed, Counter(s["status"] for s in found)
    pairs = [
        (p["address"], p["proxy_address"])
        for s in opened
        for p in s["participants"]
        if "address" in p
    ]
    assert len(pairs) == len(set(pairs)), "a pair was given to two open sessions"
    assert not behind & set(pairs), "a pair held behind Bindery's back was given"
    for s in opened:
        mine = {(p["address"], p["proxy_address"]) for p in s["participants"] if "address" in p}
        assert pairs_in_twilio(twilio, s["conversation_sid"]) == mine
        assert all(p["participant_sid"] for p in s["participants"])
    per_customer = Counter(a for a, _ in [*pairs, *behind])
    assert max(per_customer.values()) <= len(numbers)
    for s in failed:
        assert s["error_code"] == 80206, s
        assert "pool storm" in s["error"]
        named = [c for c in customers if mask(c) in s["error"]]
        assert named and not any(c in s["error"] for c in customers), s["error"]
        if s["conversation_sid"]:  # a pair found held behind Bindery's back, then none left
            state = twilio.conversations.v1.conversations(s["conversation_sid"]).fetch().state
            assert state == "closed", s

    stats = stack.emulator_stats()
    print(
        f"storm: {len(ids)} sessions, {len(opened)} open, {len(failed)} exhausted (80206), "
        f"{len(pairs)} pairs given, Twilio errors {stats['errors']}"
    )
    for code in DUPLICATE_CODES:
        assert stats["errors"].get(code, 0) == 0, stats
    assert metric(stack, "bindery_pool_exhausted_total") - exhausted_before == len(failed)
    shown = stack.api.get(f"{stack.web_url}/api/v1/pools/storm", timeout=10).json()
    assert sum(n["sessions"] for n in shown["numbers"]) == sum(
        len({p["proxy_address"] for p in s["participants"] if "address" in p}) for s in opened
    )

    # Close a third of them, and a second burst takes their numbers: still never a pair twice.
    closing = opened[::3]
    for s in closing:
        answer = stack.api.delete(f"{stack.web_url}/api/v1/sessions/{s['session_id']}", timeout=10)
        assert answer.status_code == 202, answer.text
    for s in closing:
        assert settled(stack, s["session_id"], ("closed",))["status"] == "closed"
    with ThreadPoolExecutor(16) as pool:
        more = list(pool.map(lambda body: create(stack, body), bodies[10:60]))
    stack.wait([a["job_id"] for a in more], timeout=300)
    still = [session(stack, s["session_id"]) for s in opened if s not in closing]
    new = [settled(stack, a["session_id"]) for a in more]
    live = [s for s in still + new if s["status"] == "open"]
    pairs = [
        (p["address"], p["proxy_address"])
        for s in live
        for p in s["participants"]
        if "address" in p
    ]
    assert len(pairs) == len(set(pairs))
    stats = stack.emulator_stats()
    for code in DUPLICATE_CODES:
        assert stats["errors"].get(code, 0) == 0, stats


def test_a_session_through_the_api_open_read_closed(stack, twilio):
    configure_webhooks(stack, twilio)
    numbers = [new_number() for _ in range(2)]
    put_pool(stack, "rides", numbers)
    rider, driver = new_number(), new_number()
    body = {
        "pool": "rides",
        "participants": [{"address": rider}, {"address": driver}, {"identity": "dispatch"}],
        "ttl": "20m",
        "unique_name": f"trip-{rider}",
    }
    answer = create(stack, body)
    assert create(stack, body) == {**answer, "duplicate": True}
    opened = settled(stack, answer["session_id"])
    assert opened["status"] == "open", opened
    conversation = opened["conversation_sid"]
    assert conversation.startswith("CH")
    proxies = {p["address"]: p["proxy_address"] for p in opened["participants"] if "address" in p}
    assert set(proxies) == {rider, driver} and set(proxies.values()) <= set(numbers)
    assert pairs_in_twilio(twilio, conversation) == set(proxies.items())
    listed = twilio.conversations.v1.conversations(conversation).participants.list()
    assert {p.sid for p in listed} == {p["participant_sid"] for p in opened["participants"]}
    fetched = twilio.conversations.v1.conversations(conversation).fetch()
    assert fetched.timers.get("date_closed")  # Twilio's own timer will close it

    # A number the open session uses cannot be removed.
    used = proxies[rider]
    refused = stack.api.delete(f"{stack.web_url}/api/v1/pools/rides/numbers/{used}", timeout=10)
    assert refused.status_code == 409 and refused.json()["sessions"] >= 1

    # DELETE closes the conversation, then the session.
    closing = stack.api.delete(
        f"{stack.web_url}/api/v1/sessions/{answer['session_id']}", timeout=10
    )
    assert closing.status_code == 202
    closed = settled(stack, answer["session_id"], ("closed",))
    assert closed["closed_at"]
    assert twilio.conversations.v1.conversations(conversation).fetch().state == "closed"

    # A second session, closed by Twilio's timer when the emulator's clock passes its ttl: the
    # post-event marks it closed.
    second = create(stack, {**body, "unique_name": f"trip-2-{rider}"})
    reopened = settled(stack, second["session_id"])
    assert reopened["status"] == "open"
    assert {p["proxy_address"] for p in reopened["participants"] if "address" in p} <= set(numbers)
    assert reopened["participants"][0]["proxy_address"] == proxies[rider]  # prefer-sticky
    stack.emulator_post("clock", {"advance_seconds": 20 * 60 + 5})
    timed_out = settled(stack, second["session_id"], ("closed",), timeout=30)
    assert timed_out["status"] == "closed"
    state = twilio.conversations.v1.conversations(reopened["conversation_sid"]).fetch().state
    assert state == "closed"
    shown = stack.api.get(f"{stack.web_url}/api/v1/pools/rides", timeout=10).json()
    assert all(n["sessions"] == 0 for n in shown["numbers"])
    removed = stack.api.delete(f"{stack.web_url}/api/v1/pools/rides/numbers/{used}", timeout=10)
    assert removed.status_code == 200

    stats = stack.emulator_stats()
    for code in DUPLICATE_CODES:
        assert stats["errors"].get(code, 0) == 0, stats
