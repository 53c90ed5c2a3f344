"""The pipeline end to end: API and signed webhooks in, jobs through real workers, the emulator's
answers counted. A duplicate binding is never attempted."""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from twilio.request_validator import RequestValidator

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.conftest import new_number

pytestmark = pytest.mark.integration

STACK = {
    "workers": 4,
    "BINDERY_AUTO_ADD_IDENTITIES": "supervisor-1,supervisor-2",
    "BINDERY_STALE_AFTER": "1h",
    "BINDERY_CLOSE_INACTIVE_AFTER": "3s",
}
DUPLICATE_CODES = ("50416", "50437", "50433")


def signed_post(url: str, form: dict) -> requests.Response:
    signature = RequestValidator(DEFAULT_AUTH_TOKEN).compute_signature(url, form)
    return requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)


def participants_of(twilio, sid: str) -> Counter:
    found = Counter()
    for p in twilio.conversations.v1.conversations(sid).participants.list():
        if p.identity:
            found[("identity", p.identity)] += 1
        else:
            binding = p.messaging_binding
            found[("pair", binding["address"], binding["proxy_address"])] += 1
    return found


def test_storm_never_attempts_a_duplicate_binding(stack, twilio):
    rng = random.Random(7)
    conversations = [twilio.conversations.v1.conversations.create().sid for _ in range(200)]
    proxies = [new_number() for _ in range(3)]
    expected = {sid: Counter() for sid in conversations}

    api_ops = []
    for _ in range(300):  # each pair belongs to one conversation, as Twilio's rule demands
        sid = rng.choice(conversations)
        body = {"address": new_number(), "proxy_address": rng.choice(proxies)}
        expected[sid][("pair", body["address"], body["proxy_address"])] = 1
        api_ops.append((sid, body))
    agents = [f"agent-{i}" for i in range(40)]
    while len(api_ops) < 1200:
        sid, identity = rng.choice(conversations), rng.choice(agents)
        if expected[sid][("identity", identity)]:
            continue
        expected[sid][("identity", identity)] = 1
        api_ops.append((sid, {"identity": identity}))
    webhook_ops = []  # onConversationAdded: Bindery auto-adds the two supervisors
    for sid in conversations:
        for supervisor in ("supervisor-1", "supervisor-2"):
            expected[sid][("identity", supervisor)] = 1
        webhook_ops.append(sid)

    requests_ = [("api", op) for op in api_ops] + [("webhook", sid) for sid in webhook_ops]
    unique = len(requests_)
    requests_ += rng.sample(requests_, 600)  # exact duplicates
    rng.shuffle(requests_)
    assert unique == 1400 and len(requests_) == 2000

    post_url = f"{stack.web_url}/twilio/conversations/post"

    def send(item):
        kind, op = item
        if kind == "api":
            sid, body = op
            return stack.add(sid, **body)
        form = {
            "AccountSid": DEFAULT_ACCOUNT_SID,
            "EventType": "onConversationAdded",
            "ConversationSid": op,
            "State": "active",
            "Source": "API",
            "DateCreated": "2026-11-26T20:00:00Z",
        }
        response = signed_post(post_url, form)
        assert response.status_code == 200, response.text
        return response.json()["job_id"]

    with ThreadPoolExecutor(32) as pool:
        job_ids = list(pool.map(send, requests_))
    stack.wait(job_ids, timeout=300)
    stack.wait_idle(timeout=120)

    stats = stack.emulator_stats()
    for code in DUPLICATE_CODES:
        assert stats["errors"].get(code, 0) == 0, stats
    for sid in conversations:
        assert participants_of(twilio, sid) == expected[sid], sid


def test_sdk_add_of_a_held_pair_is_refused_by_the_pre_event(stack, twilio):
    conversations = twilio.conversations.v1.conversations
    configure_webhooks(stack, twilio)
    holder, other = conversations.create().sid, conversations.create().sid
    customer, proxy = new_number(), new_number()
    job = stack.add(holder, address=customer, proxy_address=proxy)
    assert stack.wait([job])[0]["outcome"]["outcome"] == "added"

    answer = stack.emulator_post(
        "sdk/participants",
        {"conversation_sid": other, "address": customer, "proxy_address": proxy},
    )
    assert answer["added"] is False
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def webhooks_delivered(stack) -> int:
    """Post-events the emulator has finished with (answered, failed or refused)."""
    return sum(stack.emulator_stats()["webhooks"].values())


def configure_webhooks(stack, twilio, filters=None):
    twilio.conversations.v1.configuration.webhooks().update(
        pre_webhook_url=f"{stack.web_url}/twilio/conversations/pre",
        post_webhook_url=f"{stack.web_url}/twilio/conversations/post",
        filters=filters
        or [
            "onParticipantAdd",
            "onParticipantAdded",
            "onParticipantRemoved",
            "onConversationStateUpdated",
            "onConversationAdded",
            "onConversationRemoved",
            "onMessageAdded",
        ],
        method="POST",
    )


# -- conflicts --------------------------------------------------------------------------------


def bound(stack, twilio):
    """A holder conversation with a customer's pair bound through Bindery, and a second one."""
    conversations = twilio.conversations.v1.conversations
    holder, newer = conversations.create().sid, conversations.create().sid
    customer, proxy = new_number(), new_number()
    [info] = stack.wait([stack.add(holder, address=customer, proxy_address=proxy)])
    assert info["outcome"]["outcome"] == "added"
    return holder, newer, customer, proxy


def outcome(stack, sid, **body) -> dict:
    [info] = stack.wait([stack.add(sid, **body)])
    assert info["status"] == "finished", info
    return info["outcome"]


def test_a_pair_held_in_another_service_meets_no_50416(stack, twilio):
    """Issue 10, 2, through the real gateway and the official client: the holder is found in
    every Conversation Service of the account, so no job attempts the pair (today's main gave
    three 50416s per job)."""
    second_team = twilio.conversations.v1.services.create(friendly_name="second team").sid
    holder = twilio.conversations.v1.services(second_team).conversations.create().sid
    customer, proxy = new_number(), new_number()
    twilio.conversations.v1.services(second_team).conversations(holder).participants.create(
        messaging_binding_address=customer, messaging_binding_proxy_address=proxy
    )
    mine = twilio.conversations.v1.conversations.create().sid
    for _ in range(3):  # every job, not only the first
        result = outcome(stack, mine, address=customer, proxy_address=proxy, policy="reject")
        assert result["outcome"] == "conflict" and result["holder"] == holder
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0
    assert participants_of(twilio, mine) == Counter()


def test_close_stale_closes_an_idle_holder(stack, twilio):
    holder, newer, customer, proxy = bound(stack, twilio)
    stack.emulator_post("clock", {"advance_seconds": 2 * 3600})  # idle for longer than 1h
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="close-stale")
    assert result["outcome"] == "conflict_resolved"
    assert result["resolution"] == "close-stale" and result["holder"] == holder
    assert twilio.conversations.v1.conversations(holder).fetch().state == "closed"
    assert ("pair", customer, proxy) in participants_of(twilio, newer)
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def test_close_stale_closes_an_inactive_holder(stack, twilio):
    """Inactive and idle past BINDERY_STALE_AFTER (inactive alone is not stale: issue 10)."""
    holder, newer, customer, proxy = bound(stack, twilio)
    twilio.conversations.v1.conversations(holder).update(state="inactive")
    stack.emulator_post("clock", {"advance_seconds": 7 * 3600})
    result = outcome(stack, newer, address=customer, proxy_address=proxy)  # the default policy
    assert result["outcome"] == "conflict_resolved" and result["holder"] == holder
    assert twilio.conversations.v1.conversations(holder).fetch().state == "closed"


def test_close_stale_leaves_a_busy_holder_alone(stack, twilio):
    holder, newer, customer, proxy = bound(stack, twilio)
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="close-stale")
    assert result["outcome"] == "conflict" and result["holder"] == holder
    assert twilio.conversations.v1.conversations(holder).fetch().state == "active"
    assert participants_of(twilio, newer) == Counter()
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def test_reject(stack, twilio):
    holder, newer, customer, proxy = bound(stack, twilio)
    stack.emulator_post("clock", {"advance_seconds": 2 * 3600})  # even when idle
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="reject")
    assert result == {
        "outcome": "conflict",
        "conversation_sid": newer,
        "holder": holder,
        "policy": "reject",
        "reason": "the pair is held by another open conversation",
    }
    assert twilio.conversations.v1.conversations(holder).fetch().state == "active"


def test_reuse(stack, twilio):
    holder, newer, customer, proxy = bound(stack, twilio)
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="reuse")
    assert result["outcome"] == "conflict_resolved" and result["resolution"] == "reuse"
    assert result["holder"] == holder
    assert ("pair", customer, proxy) in participants_of(twilio, holder)
    assert participants_of(twilio, newer) == Counter()


def test_move(stack, twilio):
    holder, newer, customer, proxy = bound(stack, twilio)
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="move")
    assert result["outcome"] == "conflict_resolved" and result["resolution"] == "move"
    assert participants_of(twilio, holder) == Counter()
    assert participants_of(twilio, newer) == Counter({("pair", customer, proxy): 1})
    assert twilio.conversations.v1.conversations(holder).fetch().state == "active"
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def test_pair_bound_outside_bindery_is_found_before_adding(stack, twilio):
    """A pair the ledger never saw (bound by someone else, no webhook): looked up, not attempted."""
    conversations = twilio.conversations.v1.conversations
    holder, newer = conversations.create().sid, conversations.create().sid
    customer, proxy = new_number(), new_number()
    conversations(holder).participants.create(
        messaging_binding_address=customer, messaging_binding_proxy_address=proxy
    )
    result = outcome(stack, newer, address=customer, proxy_address=proxy, policy="reject")
    assert result["outcome"] == "conflict" and result["holder"] == holder
    assert stack.emulator_stats()["errors"].get("50416", 0) == 0


def test_closed_conversation_fails_with_the_code(stack, twilio):
    sid = twilio.conversations.v1.conversations.create().sid
    twilio.conversations.v1.conversations(sid).update(state="closed")
    [info] = stack.wait([stack.add(sid, identity="agent-1")])
    assert info["status"] == "failed"
    assert "50377" in info["error"]
    assert info["attempt_count"] == 1  # permanent: not retried


# -- state ordering ---------------------------------------------------------------------------


def test_shuffled_state_events_end_in_the_right_states(stack, twilio):
    rng = random.Random(11)
    created = [twilio.conversations.v1.conversations.create() for _ in range(50)]
    conversations = [c.sid for c in created]
    base = max(c.date_created.timestamp() for c in created) + 1  # `at` is on Twilio's clock
    events, expected = [], {}
    for sid in conversations:
        sequence = [rng.choice(["active", "inactive"]) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.4:
            sequence.insert(rng.randrange(len(sequence) + 1), "closed")
        for offset, state in enumerate(sequence):
            at = datetime.fromtimestamp(base + offset, UTC).isoformat().replace("+00:00", "Z")
            events.append((sid, state, at))
        expected[sid] = "closed" if "closed" in sequence else sequence[-1]
    rng.shuffle(events)
    with ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(lambda e: stack.set_state(e[0], state=e[1], at=e[2]), events))
    results = stack.wait(job_ids, timeout=120)
    assert all(r["status"] == "finished" for r in results), [r for r in results if r["error"]][:3]
    for sid in conversations:
        assert twilio.conversations.v1.conversations(sid).fetch().state == expected[sid], sid
    assert stack.emulator_stats()["errors"].get("50377", 0) == 0


@pytest.mark.parametrize("state", ["inactive", "closed"])
def test_state_change_is_idempotent(stack, twilio, state):
    sid = twilio.conversations.v1.conversations.create().sid
    [first] = stack.wait([stack.set_state(sid, state=state)])
    [again] = stack.wait([stack.set_state(sid, state=state)])
    assert (first["outcome"]["outcome"], again["outcome"]["outcome"]) == ("changed", "unchanged")
    assert twilio.conversations.v1.conversations(sid).fetch().state == state


def test_inactive_conversations_are_closed_after_the_delay_unless_active_again(stack, twilio):
    configure_webhooks(stack, twilio, filters=["onConversationStateUpdated"])
    conversations = twilio.conversations.v1.conversations
    quiet, revived = conversations.create().sid, conversations.create().sid
    delivered_before = webhooks_delivered(stack)
    for sid in (quiet, revived):  # a REST change fires its post-event only with this header
        conversations(sid).update(state="inactive", x_twilio_webhook_enabled="true")
    conversations(revived).update(state="active", x_twilio_webhook_enabled="true")
    deadline = time.monotonic() + 30
    while conversations(quiet).fetch().state != "closed":
        assert time.monotonic() < deadline, "the inactive conversation was never closed"
        time.sleep(0.5)
    # The revived one's close would have come by now: its three post-events reached Bindery, and
    # every job they led to (the delayed close included, until it ran) has left the queue.
    deadline = time.monotonic() + 30
    while webhooks_delivered(stack) - delivered_before < 3:
        assert time.monotonic() < deadline, stack.emulator_stats()["webhooks"]
        time.sleep(0.1)
    stack.wait_idle()
    assert conversations(revived).fetch().state == "active"
    assert stack.emulator_stats()["errors"].get("50377", 0) == 0
