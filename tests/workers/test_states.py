"""State changes are ordered against Twilio's own time as well as the ledger's: a late request
never undoes a newer state, and closed is final."""

from __future__ import annotations

import time

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


def test_a_request_without_at_is_on_twilio_s_clock_however_far_it_is_from_the_host_s(world):
    """Issue 14, 3: the default `at` was the web host's clock while the ledger's times are
    Twilio's, so after the emulator's clock moved ahead every request came out superseded."""
    sid = world.conversation(webhooks=True)
    world.deliver_all()
    world.advance(7 * 3600)
    world.rest_set_state(sid, "inactive")

    answer = change_state(world.rt, sid, "active", requested_at=time.time())

    assert answer["outcome"] == "changed"
    assert world.state(sid) == "active"
