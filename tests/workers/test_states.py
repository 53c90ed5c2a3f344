"""State changes are ordered against Twilio's own time as well as the ledger's: a late request
never undoes a newer state, and closed is final."""

from __future__ import annotations

import pytest

from tests.workers.world import World
from workers.states import change_state


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def test_an_old_request_does_not_undo_a_newer_state_at_twilio(world):
    """Issue 10, 4: `at` was compared with the ledger only: an app's `active` made at T-120 s was
    applied after Twilio itself turned the conversation inactive at T (no webhook yet)."""
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    world.advance(1000)
    world.rest_set_state(sid, "inactive")  # at T, no webhook
    requested_at = world.clock.epoch() - 120

    answer = change_state(world.rt, sid, "active", requested_at)

    assert answer["outcome"] == "superseded"
    assert world.state(sid) == "inactive"


def test_a_newer_request_is_applied(world):
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    world.advance(1000)
    world.rest_set_state(sid, "inactive")
    world.advance(10)

    answer = change_state(world.rt, sid, "active", world.clock.epoch())

    assert answer["outcome"] == "changed"
    assert world.state(sid) == "active"
