"""The stale cleanup closes what is idle by Twilio's own facts when the close happens, not when
the scan saw it."""

from __future__ import annotations

import pytest

from tests.workers.world import World
from workers import cleanup

CUSTOMER, PROXY = "+15551230001", "+15550001111"
HOUR = 3600.0


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def test_a_conversation_busy_again_before_its_close_runs_is_not_closed(world):
    """Issue 10, 3: the cleanup scheduled closes spread over minutes and never re-checked
    idleness when they ran."""
    busy_later = world.inbound(CUSTOMER, PROXY)
    idle = world.inbound("+15551230002", PROXY)
    world.deliver_all()
    world.advance(7 * HOUR)
    report = cleanup.run(world.rt)
    assert {s.conversation_sid for s in report} == {busy_later, idle}
    world.inbound(CUSTOMER, PROXY, body="I am back")

    world.run_enqueued()

    assert world.state(busy_later) == "active"
    assert world.state(idle) == "closed"
