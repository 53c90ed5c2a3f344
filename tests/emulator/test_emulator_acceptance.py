"""The acceptance scenario of the emulator issue, through the official client and the project's
adapter; every 2xx body is validated against Twilio's OpenAPI description (see conftest)."""

from __future__ import annotations

import re

import pytest
from twilio.base.exceptions import TwilioRestException

from workers.twilio_http import make_client

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"


def test_acceptance_binding_rule_lookup_and_paging(conversations, validate_answers):
    first = conversations.conversations.create(friendly_name="first")
    second = conversations.conversations.create(friendly_name="second")

    added = first.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    assert added.messaging_binding == {
        "type": "sms",
        "address": CUSTOMER,
        "proxy_address": TWILIO_NUMBER,
    }

    # The pair is held by the first conversation: 50416 names the holder.
    with pytest.raises(TwilioRestException) as caught:
        second.participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
        )
    assert caught.value.code == 50416
    assert caught.value.status == 409
    assert re.search(r"CH[0-9a-fA-F]{32}", caught.value.msg).group(0) == first.sid
    assert (
        "A binding for this participant and proxy address already exists in Conversation "
        + first.sid
    ) in caught.value.msg

    # ParticipantConversations finds the holder.
    found = conversations.participant_conversations.list(address=CUSTOMER)
    assert [(pc.conversation_sid, pc.conversation_state) for pc in found] == [(first.sid, "active")]
    assert found[0].participant_messaging_binding["proxy_address"] == TWILIO_NUMBER
    assert found[0].participant_sid == added.sid

    # Closing the holder releases the pair.
    assert first.update(state="closed").state == "closed"
    moved = second.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    assert moved.conversation_sid == second.sid

    # The same pair again in the same conversation: 50437.
    with pytest.raises(TwilioRestException) as caught:
        second.participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
        )
    assert caught.value.code == 50437

    # Paging: 5 conversations, 2 per page, walked with the official client.
    for number in range(3, 6):
        conversations.conversations.create(friendly_name=f"conversation {number}")
    page = conversations.conversations.page(page_size=2)
    pages = 1
    while (page := page.next_page()) is not None:
        pages += 1
    assert pages == 3
    listed = conversations.conversations.list(page_size=2)
    assert len(listed) == 5
    assert len({c.sid for c in listed}) == 5

    # Every 2xx body above matches the spec (the fixture checks again at teardown).
    assert validate_answers() >= 15


def test_make_client_adapter_reaches_the_emulator(emulator):
    client = make_client(emulator.account_sid, emulator.auth_token, base_url=emulator.url)
    try:
        conversation = client.conversations.v1.conversations.create(unique_name="via-adapter")
        fetched = client.conversations.v1.conversations("via-adapter").fetch()
        assert fetched.sid == conversation.sid
        assert (
            fetched.url == f"https://conversations.twilio.com/v1/Conversations/{conversation.sid}"
        )
    finally:
        client.http_client.session.close()
