"""Integration fixtures: real Redis, the emulator, gunicorn and RQ workers, as processes."""

from __future__ import annotations

import itertools
import random

import pytest

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.stack import Stack
from workers.twilio_http import make_client

_numbers = itertools.count(random.randrange(10**6, 9 * 10**6, 1000))


def new_number() -> str:
    """A phone number no other test has used in this run (the ledger outlives emulator resets)."""
    return f"+1555{next(_numbers):07d}"


def conflicting_add(stack, twilio) -> tuple[dict, str, str, str, str]:
    """A pair added to one new conversation, then asked for another with `reject`: the second
    add's job (a conflict), the holder, the other conversation, the customer and the proxy."""
    conversations = twilio.conversations.v1.conversations
    holder, newer = conversations.create().sid, conversations.create().sid
    customer, proxy = new_number(), new_number()
    stack.wait([stack.add(holder, address=customer, proxy_address=proxy)])
    [info] = stack.wait([stack.add(newer, address=customer, proxy_address=proxy, policy="reject")])
    return info, holder, newer, customer, proxy


@pytest.fixture(scope="module")
def stack(request):
    options = getattr(request.module, "STACK", {})
    stack = Stack(**options)
    yield stack
    stack.stop()


@pytest.fixture
def twilio(stack):
    """The official client, talking to the emulator over HTTP; the emulator starts empty."""
    stack.reset()
    return make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=stack.emulator_url)
