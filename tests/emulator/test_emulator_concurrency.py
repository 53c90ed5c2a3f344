"""Check-then-write rules hold under concurrent requests (one store lock)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from twilio.base.exceptions import TwilioRestException

from workers.twilio_http import make_client

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"


def race(emulator, count: int, action: Callable[[Any, int], Any]) -> list[Any]:
    """Run `action(client, i)` in `count` threads released at the same moment; answers or
    TwilioRestExceptions, in thread order."""
    clients = [
        make_client(emulator.account_sid, emulator.auth_token, base_url=emulator.url)
        for _ in range(count)
    ]
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action(clients[i].conversations.v1, i)
        except TwilioRestException as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.http_client.session.close()
    return results


def test_fifty_threads_add_one_pair_to_fifty_conversations(conversations, emulator, admin):
    sids = [conversations.conversations.create().sid for _ in range(50)]

    def add(v1, i):
        return v1.conversations(sids[i]).participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
        )

    results = race(emulator, 50, add)
    added = [r for r in results if not isinstance(r, TwilioRestException)]
    errors = [r for r in results if isinstance(r, TwilioRestException)]
    assert len(added) == 1
    assert Counter((e.code, e.status) for e in errors) == {(50416, 409): 49}
    holder = added[0].conversation_sid
    assert all(holder in e.msg for e in errors)
    assert admin.stats()["errors"] == {"50416": 49}
    found = conversations.participant_conversations.list(address=CUSTOMER)
    assert [pc.conversation_sid for pc in found] == [holder]


def test_two_threads_create_one_unique_name(conversations, emulator):
    results = race(emulator, 2, lambda v1, i: v1.conversations.create(unique_name="ticket-1"))
    created = [r for r in results if not isinstance(r, TwilioRestException)]
    errors = [r for r in results if isinstance(r, TwilioRestException)]
    assert len(created) == 1
    assert [e.code for e in errors] == [50353]
    assert conversations.conversations("ticket-1").fetch().sid == created[0].sid


def test_many_threads_add_one_identity_to_one_conversation(conversations, emulator):
    sid = conversations.conversations.create().sid
    results = race(
        emulator, 20, lambda v1, i: v1.conversations(sid).participants.create(identity="agent-7")
    )
    codes = Counter(r.code if isinstance(r, TwilioRestException) else "added" for r in results)
    assert codes == {"added": 1, 50433: 19}


def test_closing_and_adding_race_cleanly(conversations, emulator):
    """Half the threads close holders, half add the pair elsewhere: the rule is never broken."""
    holder = conversations.conversations.create()
    holder.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    targets = [conversations.conversations.create().sid for _ in range(10)]

    def act(v1, i):
        if i == 0:
            return v1.conversations(holder.sid).update(state="closed")
        return v1.conversations(targets[i]).participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
        )

    race(emulator, 10, act)
    holders = [
        pc
        for pc in conversations.participant_conversations.list(address=CUSTOMER)
        if pc.conversation_state != "closed"
    ]
    assert len(holders) <= 1
