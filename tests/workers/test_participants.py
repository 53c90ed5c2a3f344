"""Participant-add: no duplicate binding attempted, whatever service holds the pair, whatever
happened between two of the job's steps; a conflict policy acts only on what Twilio says under the
holder's lock."""

from __future__ import annotations

import pytest

from tests.workers.world import World
from workers import keys
from workers.participants import add_participant

CUSTOMER, PROXY = "+15551230001", "+15550001111"
PAIR = keys.pair_id(CUSTOMER, PROXY)
HOUR = 3600.0


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def known_conversation(world: World, **options) -> str:
    sid = world.conversation(webhooks=True, **options)
    world.deliver_all()
    return sid


def add(world, conversation, **request):
    return add_participant(world.rt, conversation, **request)


def test_a_pair_held_in_another_service_is_a_conflict_without_a_50416(world):
    """Issue 10, 2: the binding rule is account-wide, but holders were looked up in the
    configured service only: three 50416s per job, every job."""
    other_service = world.service()
    holder = world.conversation(service_sid=other_service)
    world.rest_add(holder, service_sid=other_service, address=CUSTOMER, proxy_address=PROXY)
    sid = known_conversation(world)

    answer = add(world, sid, address=CUSTOMER, proxy_address=PROXY)

    assert answer["outcome"] == "conflict" and answer["holder"] == holder
    assert world.twilio.errors[50416] == 0
    again = add(world, sid, address=CUSTOMER, proxy_address=PROXY)
    assert again["outcome"] == "conflict" and world.twilio.errors[50416] == 0


def test_close_stale_rechecks_the_holder_under_its_lock(world):
    """Issue 10, 3: close-stale judged the holder idle before taking its lock, and never looked
    again: a customer who wrote meanwhile had their conversation closed."""
    holder = world.inbound(CUSTOMER, PROXY)
    world.deliver_all()
    world.advance(7 * HOUR)
    sid = known_conversation(world)
    job = world.start("add", lambda: add(world, sid, address=CUSTOMER, proxy_address=PROXY))
    job.run_past("twilio:participant_conversation.list")
    scripts = job.history.count("redis:EVALSHA")
    job.run_until("redis:EVALSHA", occurrence=scripts + 2)  # the bind, then the holder's lock
    assert not world.redis.exists(keys.conversation_lock(holder))
    world.inbound(CUSTOMER, PROXY, body="I am still here")  # its webhook not delivered yet
    answer = job.finish()

    assert world.state(holder) == "active"
    assert answer["outcome"] == "conflict"


def test_an_inactive_holder_that_was_busy_minutes_ago_is_not_stale(world):
    """Issue 10, 3: every inactive holder counted as stale, whatever its idle time."""
    holder = world.inbound(CUSTOMER, PROXY)
    world.rest_set_state(holder, "inactive")
    world.deliver_all()
    world.advance(600)
    sid = known_conversation(world)

    answer = add(world, sid, address=CUSTOMER, proxy_address=PROXY)

    assert world.state(holder) == "inactive"
    assert answer["outcome"] == "conflict"


def test_an_allowed_pre_event_makes_a_racing_add_ask_twilio(world):
    """Issue 10, 5: a 200 to the pre-event reserved nothing, so an API add of the same pair to
    another conversation, racing the SDK add's post-event, met a 50416."""
    first = known_conversation(world)
    assert add(world, first, address=CUSTOMER, proxy_address=PROXY)["outcome"] == "added"
    world.rest_set_state(first, "closed", webhooks=True)
    world.deliver_all()
    assert not world.rt.ledger.pair(PAIR).held  # known, and free

    sdk_conversation = known_conversation(world)
    api_conversation = known_conversation(world)
    pre, participant = world.sdk_add(sdk_conversation, address=CUSTOMER, proxy_address=PROXY)
    assert pre.status_code == 200 and participant  # its post-event still in flight
    answer = add(world, api_conversation, address=CUSTOMER, proxy_address=PROXY, policy="reject")

    assert answer["outcome"] == "conflict" and answer["holder"] == sdk_conversation
    assert world.twilio.errors[50416] == 0


def test_a_participant_removed_behind_bindery_s_back_is_added_again(world):
    """Issue 10, 6: `already_present` came from the ledger alone, so an add after a removal
    Bindery never heard of did nothing."""
    sid = known_conversation(world)
    added = add(world, sid, address=CUSTOMER, proxy_address=PROXY)
    world.rest_remove(sid, added["participant_sid"])

    answer = add(world, sid, address=CUSTOMER, proxy_address=PROXY)

    assert answer["outcome"] == "added"
    assert [p.binding.address for p in world.participants(sid)] == [CUSTOMER]


def test_an_identity_removed_behind_bindery_s_back_is_added_again(world):
    sid = known_conversation(world)
    added = add(world, sid, identity="agent-1")
    world.rest_remove(sid, added["participant_sid"])

    assert add(world, sid, identity="agent-1")["outcome"] == "added"
    assert [p.identity for p in world.participants(sid)] == ["agent-1"]


def test_a_job_whose_lease_ran_out_does_not_overwrite_newer_knowledge(world):
    """Issue 10, 7: ledger writes after a Twilio call were not fenced: a job that stalled past
    its lease wrote its older view over what the next job had learned."""
    first, second, third = (known_conversation(world) for _ in range(3))
    slow = world.start("slow", lambda: add(world, first, address=CUSTOMER, proxy_address=PROXY))
    slow.run_past("twilio:participant_conversation.list")  # Twilio said: free
    for key in world.redis.keys(keys.pair_lock("*")) + world.redis.keys(
        keys.conversation_lock("*")
    ):
        world.redis.delete(key)  # the slow job's leases run out while it stalls
    assert add(world, second, address=CUSTOMER, proxy_address=PROXY)["outcome"] == "added"
    slow.finish()

    assert world.rt.ledger.pair(PAIR).holder == second
    answer = add(world, third, address=CUSTOMER, proxy_address=PROXY, policy="reject")
    assert answer["outcome"] == "conflict" and answer["holder"] == second
    assert world.twilio.errors[50416] == 0


def test_an_sdk_add_racing_bindery_s_create_is_refused_by_the_pre_event(world):
    """Found by the interleaving test: an SDK add of the pair, let through while a job was about to
    create it, made the job's create meet a 50437 (here) or a 50416 (elsewhere)."""
    sid, other = known_conversation(world), known_conversation(world)
    job = world.start("add", lambda: add(world, sid, address=CUSTOMER, proxy_address=PROXY))
    job.run_until("twilio:participant.create")
    here, added_here = world.sdk_add(sid, address=CUSTOMER, proxy_address=PROXY)
    elsewhere, added_elsewhere = world.sdk_add(other, address=CUSTOMER, proxy_address=PROXY)

    assert (here.status_code, here.json) == (409, {"reason": "being_added"})
    assert (elsewhere.status_code, elsewhere.json) == (
        409,
        {"reason": "pair_being_added", "holder": sid},
    )
    assert added_here is None and added_elsewhere is None
    assert job.finish()["outcome"] == "added"
    assert sum(world.twilio.errors.values()) == 0


def test_an_sdk_add_of_an_identity_being_added_is_refused_by_the_pre_event(world):
    sid = known_conversation(world)
    job = world.start("add", lambda: add(world, sid, identity="agent-1"))
    job.run_until("twilio:participant.create")
    pre, added = world.sdk_add(sid, identity="agent-1")

    assert (pre.status_code, pre.json["reason"], added) == (409, "being_added", None)
    assert job.finish()["outcome"] == "added"
    assert world.twilio.errors[50433] == 0


def test_an_identity_an_sdk_added_is_not_added_again_before_its_webhook(world):
    """Found by the interleaving test: a pre-event let an SDK's add of an identity through and
    marked nothing, so an add of the same identity, before the post-event, met a 50433."""
    sid = known_conversation(world)
    pre, added = world.sdk_add(sid, identity="agent-2")
    assert pre.status_code == 200 and added  # its post-event still in flight

    answer = add(world, sid, identity="agent-2")

    assert answer == {
        "outcome": "already_present",
        "conversation_sid": sid,
        "participant_sid": added,
    }
    assert world.twilio.errors[50433] == 0


def test_move_from_a_holder_closed_meanwhile_adds_the_pair(world):
    """Found by the interleaving test: the holder closed (behind Bindery's back) between the
    lookup and the removal; the removal's 50377 failed the add, though the pair was free."""
    holder, sid = known_conversation(world), known_conversation(world)
    world.rest_add(holder, address=CUSTOMER, proxy_address=PROXY)
    job = world.start(
        "move", lambda: add(world, sid, address=CUSTOMER, proxy_address=PROXY, policy="move")
    )
    job.run_until("twilio:participant.delete")
    world.rest_set_state(holder, "closed")
    answer = job.finish()

    assert answer["outcome"] == "conflict_resolved" and answer["resolution"] == "move"
    assert [p.binding.address for p in world.participants(sid)] == [CUSTOMER]


def test_the_trusting_mode_adds_a_pair_it_never_saw_with_one_call(world):
    """Issue 15: with BINDERY_LEDGER_MODE=trust and a full reconcile behind it, a pair the ledger
    does not hold is free: one call, the create."""
    trusting = World(settings_overrides={"ledger_mode": "trust"})
    try:
        sid = known_conversation(trusting)
        before = sum(trusting.twilio.calls.values())
        answer = add(trusting, sid, address=CUSTOMER, proxy_address=PROXY)
        assert answer["outcome"] == "added"
        assert sum(trusting.twilio.calls.values()) - before > 1  # no reconcile yet: it verifies

        from workers import reconcile

        reconcile.run(trusting.rt)
        other = known_conversation(trusting)
        calls = dict(trusting.twilio.calls)
        answer = add(trusting, other, address="+15551230009", proxy_address=PROXY)
        again = add(trusting, other, address="+15551230009", proxy_address=PROXY)
        assert (answer["outcome"], again["outcome"]) == ("added", "already_present")
        made = {op: n - calls.get(op, 0) for op, n in trusting.twilio.calls.items()}
        assert {op: n for op, n in made.items() if n} == {"participant.create": 1}
    finally:
        trusting.close()


def test_the_trusting_mode_still_asks_about_a_pending_pair(world):
    """A pre-event let an SDK add through: even a trusting job asks Twilio first."""
    trusting = World(settings_overrides={"ledger_mode": "trust"})
    try:
        from workers import reconcile

        reconcile.run(trusting.rt)
        sdk, api = known_conversation(trusting), known_conversation(trusting)
        pre, participant = trusting.sdk_add(sdk, address=CUSTOMER, proxy_address=PROXY)
        assert pre.status_code == 200 and participant
        answer = add(trusting, api, address=CUSTOMER, proxy_address=PROXY, policy="reject")
        assert answer["outcome"] == "conflict" and answer["holder"] == sdk
        assert trusting.twilio.errors[50416] == 0
    finally:
        trusting.close()


def test_an_sdk_add_between_a_job_s_read_and_its_mark_makes_it_ask(world):
    """Found by the soak: the job read the identity as unknown, an SDK add was let through (and
    marked), then the job's pending mark wrote over that mark and its create met a 50433."""
    sid = known_conversation(world)
    job = world.start("add", lambda: add(world, sid, identity="agent-1"))
    job.run_until("redis:HGET")  # about to read the member
    job.advance()  # read: unknown
    pre, added = world.sdk_add(sid, identity="agent-1")
    assert pre.status_code == 200 and added

    answer = job.finish()

    assert answer["outcome"] == "already_present" and answer["participant_sid"] == added
    assert world.twilio.errors[50433] == 0
