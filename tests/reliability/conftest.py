"""Fixtures of the reliability suite: a stack per module (its options in the module's `STACK`), the
official Twilio client against the stack's emulator, and the fault storm that the Twilio-fault and
security tests share (it runs once per session)."""

from __future__ import annotations

import shutil

import pytest

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.reliability.harness import ReliabilityStack
from workers.twilio_http import make_client


def client_for(stack):
    return make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=stack.emulator_url)


@pytest.fixture(scope="module")
def stack(request):
    options = getattr(request.module, "STACK", {})
    if options.get("redis_args") and not shutil.which("redis-server"):
        pytest.skip("needs redis-server to start a Redis with its own settings")
    stack = ReliabilityStack(**options)
    yield stack
    stack.stop()


@pytest.fixture
def twilio(stack):
    """The official client, talking to the emulator over HTTP; the emulator starts empty."""
    stack.reset()
    return client_for(stack)


@pytest.fixture(scope="session")
def fault_storm():
    from tests.reliability.storms import FaultStorm

    storm = FaultStorm()
    try:
        storm.run()
        yield storm
    finally:
        storm.stop()
