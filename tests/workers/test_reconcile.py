"""Reconciliation repairs the ledger from Twilio, and never on facts that went stale during the run:
each conversation is judged under its lock on what Twilio says then, and closed stays closed."""

from __future__ import annotations

import pytest

from tests.workers.world import World
from workers import keys, reconcile
from workers.errors import LockBusy
from workers.participants import add_participant

CUSTOMER, PROXY = "+15551230001", "+15550001111"
PAIR = keys.pair_id(CUSTOMER, PROXY)


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def known_conversation(world: World) -> str:
    """A conversation created with webhooks on, its onConversationAdded delivered."""
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    return sid


def test_a_conversation_autocreated_during_the_run_stays_open(world):
    """Issue 10, 1: the list is taken first; a conversation an inbound SMS creates after it (its
    post-events recorded) was marked closed, its pair shown free, and adds to it failed with a
    made-up 50377."""
    run = world.start("reconcile", lambda: reconcile.run(world.rt))
    run.run_past("twilio:conversation.list")
    new = world.inbound(CUSTOMER, PROXY)
    world.deliver_all()
    run.finish()

    assert world.rt.ledger.conversation(new).state == "active"
    assert world.rt.ledger.pair(PAIR).holder == new
    assert add_participant(world.rt, new, identity="agent-1")["outcome"] == "added"


def test_a_conversation_that_turns_active_between_two_list_calls_stays_open(world):
    """Issue 10, 1: inactive while the active ones were listed, active again (an inbound message)
    when the inactive ones were: in neither list, it was marked closed."""
    sid = world.inbound(CUSTOMER, PROXY)
    world.rest_set_state(sid, "inactive", webhooks=True)
    world.deliver_all()
    run = world.start("reconcile", lambda: reconcile.run(world.rt))
    run.run_until("twilio:conversation.list", occurrence=2)
    world.inbound(CUSTOMER, PROXY, body="still there?")
    world.deliver_all()
    run.finish()

    assert world.rt.ledger.conversation(sid).state == "active"
    assert world.rt.ledger.pair(PAIR).holder == sid


def test_a_conversation_of_another_service_is_not_closed(world):
    """Issue 10, 1: with webhooks configured at account level the ledger knows conversations of
    other services; they were not in the configured service's list, so they were marked closed."""
    other = world.service()
    sid = world.conversation(service_sid=other, webhooks=True)
    world.rest_add(sid, service_sid=other, address=CUSTOMER, proxy_address=PROXY)
    world.deliver_all()
    world.rt.ledger.bind(PAIR, sid, "", world.clock.epoch())

    reconcile.run(world.rt)

    assert world.rt.ledger.conversation(sid).state == "active"
    assert world.rt.ledger.pair(PAIR).holder == sid


def test_a_pair_bound_while_participants_are_read_is_not_released(world):
    """Issue 10, 1: participants were read before the lock was taken, so a pair a job bound in
    between looked extra and was released."""
    sid = known_conversation(world)
    run = world.start("reconcile", lambda: reconcile.run(world.rt))
    run.run_past("twilio:participant.list")
    try:
        answer = add_participant(world.rt, sid, CUSTOMER, PROXY)
    except LockBusy:  # reconcile holds the conversation: RQ retries the add after it
        run.finish()
        answer = add_participant(world.rt, sid, CUSTOMER, PROXY)
    run.finish()

    assert answer["outcome"] == "added"
    assert world.rt.ledger.pair(PAIR).holder == sid


def test_closed_stays_closed(world):
    """Issue 10, 1: a conversation closed after the list was taken was re-opened in the ledger
    from the list's stale state."""
    from workers.states import change_state

    sid = known_conversation(world)
    run = world.start("reconcile", lambda: reconcile.run(world.rt))
    run.run_past("twilio:conversation.list")
    assert change_state(world.rt, sid, "closed", world.clock.epoch())["outcome"] == "changed"
    run.finish()

    assert world.rt.ledger.conversation(sid).state == "closed"
    assert world.state(sid) == "closed"


def test_a_holder_learned_from_a_lookup_is_released_once_it_closed(world):
    """Issue 10, 6: a holder learned only through a lookup had no conversation record, so no
    reconcile ever released its pairs and the pre-event refused the pair forever."""
    holder = world.conversation()
    world.rest_add(holder, address=CUSTOMER, proxy_address=PROXY)
    other = known_conversation(world)
    answer = add_participant(world.rt, other, CUSTOMER, PROXY, policy="reject")
    assert answer["outcome"] == "conflict" and answer["holder"] == holder
    world.rest_set_state(holder, "closed")

    reconcile.run(world.rt)

    assert not world.rt.ledger.pair(PAIR).held
    later = known_conversation(world)
    pre, participant = world.sdk_add(later, address=CUSTOMER, proxy_address=PROXY)
    assert pre.status_code == 200 and participant


def test_a_pair_its_conversation_does_not_list_is_listed_again(world):
    """The pair's record names its holder, but the holder's `pairs` field lacks it (a ledger
    written before pairs were a field of the conversation's hash): its close would not let it go.
    A reconcile lists it again, and the close then releases it."""
    from workers.states import change_state

    sid = known_conversation(world)
    add_participant(world.rt, sid, CUSTOMER, PROXY)
    world.deliver_all()
    ledger = world.rt.ledger
    assert ledger.pair(PAIR).holder == sid and ledger.pairs_of(sid) == {PAIR}
    ledger.redis.hdel(keys.conversation(sid), "pairs")

    reconcile.run(world.rt)

    assert ledger.pairs_of(sid) == {PAIR}
    assert change_state(world.rt, sid, "closed", world.clock.epoch())["outcome"] == "changed"
    assert not ledger.pair(PAIR).held


def test_a_pair_learned_for_the_conversation_after_its_participants_were_read_is_kept(world):
    """Reconcile holds the conversation's lock and has read its participants; then an SDK adds
    the customer there, and another conversation's add (holding the pair's lock, not this
    conversation's) learns from Twilio that this conversation holds the pair. The reconcile's
    list is stale: the pair is asked about again under its lock, and kept."""
    sid = known_conversation(world)
    other = known_conversation(world)
    run = world.start("reconcile", lambda: reconcile.reconcile_conversation(world.rt, sid))
    run.run_past("twilio:participant.list")
    world.sdk_add(sid, address=CUSTOMER, proxy_address=PROXY)
    answer = add_participant(world.rt, other, CUSTOMER, PROXY, policy="reject")
    assert answer["outcome"] == "conflict" and answer["holder"] == sid
    assert world.rt.ledger.pair(PAIR).holder == sid
    run.finish()

    assert world.rt.ledger.pair(PAIR).holder == sid
    assert world.rt.ledger.pairs_of(sid) == {PAIR}
