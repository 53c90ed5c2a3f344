"""The inactive-close timer closes only what Twilio still says is inactive and idle."""

from __future__ import annotations

import pytest

from tests.workers.world import World

CUSTOMER, PROXY = "+15551230001", "+15550001111"


@pytest.fixture
def world():
    world = World(settings_overrides={"close_inactive_after": 600.0})
    yield world
    world.close()


def test_a_conversation_active_again_at_twilio_is_not_closed(world):
    """Issue 10, 3: the timer checked the ledger only, so a conversation that turned active again
    (its webhook still queued, or lost) was closed."""
    sid = world.inbound(CUSTOMER, PROXY)
    world.advance(60)
    world.rest_set_state(sid, "inactive", webhooks=True)
    world.deliver_all()
    assert world.queue.jobs and world.queue.jobs[0].delay == 600.0
    world.inbound(CUSTOMER, PROXY, body="back again")  # Twilio: active; webhook not delivered
    world.advance(600)

    [answer] = world.run_enqueued()

    assert world.state(sid) == "active"
    assert answer["outcome"] == "cancelled"


def test_a_conversation_still_inactive_and_idle_is_closed(world):
    sid = world.inbound(CUSTOMER, PROXY)
    world.advance(60)
    world.rest_set_state(sid, "inactive", webhooks=True)
    world.deliver_all()
    world.advance(600)

    [answer] = world.run_enqueued()

    assert world.state(sid) == "closed"
    assert answer["outcome"] == "changed"
