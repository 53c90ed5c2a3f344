"""Post-events teach the ledger in event order, whatever order they arrive in, and never erase
what another job learned meanwhile."""

from __future__ import annotations

import pytest

from tests.workers.world import World
from workers import keys
from workers.participants import add_participant

CUSTOMER, PROXY = "+15551230001", "+15550001111"
PAIR = keys.pair_id(CUSTOMER, PROXY)


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def test_a_late_added_does_not_bring_back_a_removed_identity(world):
    """Issue 10, 6: identities carried no participant SID or event time, so a late
    onParticipantAdded brought back an identity whose removal was already known."""
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    participant = world.rest_add(sid, identity="agent-1", webhooks=True)
    world.advance(5)
    world.rest_remove(sid, participant, webhooks=True)
    added = world.take_webhook("onParticipantAdded")
    world.deliver_all()  # the removal
    world.run_post_event(added)  # the add, delivered late

    assert not world.rt.ledger.has_identity(sid, "agent-1")
    answer = add_participant(world.rt, sid, identity="agent-1")
    assert answer["outcome"] == "added"


def test_a_close_does_not_release_a_pair_bound_elsewhere_meanwhile(world):
    """Issue 10, 7: a close read the conversation's pairs, then released them, under the
    conversation's lock only: a bind another job made in between, under the pair's lock, was
    erased."""
    first = world.conversation(webhooks=True)
    second = world.conversation(webhooks=True)
    world.deliver_all()
    assert add_participant(world.rt, first, CUSTOMER, PROXY)["outcome"] == "added"
    world.rest_set_state(first, "closed", webhooks=True)
    closed = world.take_webhook("onConversationStateUpdated")
    world.drop_webhooks()
    release = world.start("closed webhook", lambda: world.run_post_event(closed))
    release.run_until("redis:pipeline", "redis:EVALSHA")  # its write, pairs read
    answer = add_participant(world.rt, second, CUSTOMER, PROXY)
    assert answer["outcome"] == "added"
    release.finish()

    assert world.rt.ledger.pair(PAIR).holder == second
