"""REST shapes: both path forms, paging, lookups, messages, webhook configuration, errors."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException

BASE = "https://conversations.twilio.com/v1"
CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"


def test_services_create_list_fetch(conversations, emulator):
    created = conversations.services.create(friendly_name="support")
    assert created.sid.startswith("IS") and len(created.sid) == 34
    assert created.url == f"{BASE}/Services/{created.sid}"
    assert created.links["conversations"] == f"{BASE}/Services/{created.sid}/Conversations"
    listed = conversations.services.list()
    assert [s.sid for s in listed] == [emulator.default_service_sid, created.sid]
    assert conversations.services(created.sid).fetch().friendly_name == "support"


def test_the_service_scoped_form_addresses_the_same_conversations(conversations, emulator):
    scoped = conversations.services(emulator.default_service_sid)
    created = scoped.conversations.create(friendly_name="scoped", unique_name="t-1")
    assert created.chat_service_sid == emulator.default_service_sid
    assert (
        created.url == f"{BASE}/Services/{emulator.default_service_sid}/Conversations/{created.sid}"
    )
    plain = conversations.conversations(created.sid).fetch()
    assert plain.url == f"{BASE}/Conversations/{created.sid}"
    assert plain.links["participants"] == f"{BASE}/Conversations/{created.sid}/Participants"

    participant = scoped.conversations("t-1").participants.create(identity="agent-7")
    assert participant.url.startswith(f"{BASE}/Services/{emulator.default_service_sid}/")
    assert scoped.conversations(created.sid).participants(participant.sid).fetch().identity == (
        "agent-7"
    )
    updated = (
        scoped.conversations(created.sid)
        .participants(participant.sid)
        .update(attributes='{"role": "lead"}')
    )
    assert updated.attributes == '{"role": "lead"}'
    message = scoped.conversations(created.sid).messages.create(author="agent-7", body="hi")
    assert message.participant_sid == participant.sid
    assert [m.sid for m in scoped.conversations(created.sid).messages.list()] == [message.sid]
    found = scoped.participant_conversations.list(identity="agent-7")
    assert [pc.conversation_sid for pc in found] == [created.sid]
    assert found[0].links["conversation"].startswith(f"{BASE}/Services/")
    assert scoped.conversations(created.sid).participants(participant.sid).delete() is True
    assert scoped.conversations(created.sid).delete() is True


def test_conversation_fields_and_updates(conversations):
    created = conversations.conversations.create(
        friendly_name="support",
        unique_name="ticket-9",
        attributes='{"topic": "billing"}',
        messaging_service_sid="MG" + "a" * 32,
    )
    assert created.sid.startswith("CH") and created.state == "active"
    assert created.messaging_service_sid == "MG" + "a" * 32
    assert (created.timers, created.bindings) == ({}, {})
    by_name = conversations.conversations("ticket-9").fetch()
    assert by_name.sid == created.sid and by_name.attributes == '{"topic": "billing"}'
    updated = conversations.conversations("ticket-9").update(
        friendly_name="renamed", unique_name="ticket-10", attributes="{}"
    )
    assert (updated.friendly_name, updated.unique_name) == ("renamed", "ticket-10")
    assert conversations.conversations("ticket-10").fetch().sid == created.sid
    default = conversations.conversations.create()
    assert default.messaging_service_sid.startswith("MG")
    assert (default.unique_name, default.friendly_name, default.attributes) == (None, None, "{}")


def test_list_filters_by_state(conversations):
    active = conversations.conversations.create()
    inactive = conversations.conversations.create(state="inactive")
    closed = conversations.conversations.create()
    closed.update(state="closed")
    assert [c.sid for c in conversations.conversations.list(state="active")] == [active.sid]
    assert [c.sid for c in conversations.conversations.list(state="inactive")] == [inactive.sid]
    assert [c.sid for c in conversations.conversations.list(state="closed")] == [closed.sid]
    assert len(conversations.conversations.list()) == 3


def test_paging_meta_and_urls(raw, emulator):
    for _ in range(5):
        raw.post(f"{emulator.url}/v1/Conversations", data={"State": "active"})
    first = raw.get(f"{emulator.url}/v1/Conversations", params={"PageSize": 2, "State": "active"})
    meta = first.json()["meta"]
    assert meta["key"] == "conversations" and (meta["page"], meta["page_size"]) == (0, 2)
    assert meta["first_page_url"] == f"{BASE}/Conversations?State=active&PageSize=2&Page=0"
    assert meta["url"] == meta["first_page_url"] and meta["previous_page_url"] is None
    next_url = urlsplit(meta["next_page_url"])
    assert (next_url.scheme, next_url.netloc) == ("https", "conversations.twilio.com")
    query = parse_qs(next_url.query)
    assert query["PageSize"] == ["2"] and query["Page"] == ["1"] and query["State"] == ["active"]
    assert query["PageToken"][0]

    seen = [c["sid"] for c in first.json()["conversations"]]
    url = meta["next_page_url"]
    while url:
        page = raw.get(url.replace("https://conversations.twilio.com", emulator.url)).json()
        seen += [c["sid"] for c in page["conversations"]]
        assert page["meta"]["previous_page_url"]
        url = page["meta"]["next_page_url"]
    assert len(seen) == len(set(seen)) == 5
    # The previous page of the last page is the middle one.
    back = raw.get(page["meta"]["previous_page_url"].replace(BASE[:-3], emulator.url)).json()
    assert [c["sid"] for c in back["conversations"]] == seen[2:4]


def test_paging_limits_and_bad_tokens(raw, emulator):
    url = f"{emulator.url}/v1/Conversations"
    assert raw.get(url).json()["meta"]["page_size"] == 50
    assert raw.get(url, params={"PageSize": 101}).status_code == 400
    assert raw.get(url, params={"PageSize": 100}).status_code == 200
    assert raw.get(url, params={"PageToken": "PAnonsense"}).status_code == 400
    pcs = f"{emulator.url}/v1/ParticipantConversations"
    assert raw.get(pcs, params={"Address": CUSTOMER, "PageSize": 51}).status_code == 400
    assert raw.get(pcs, params={"Address": CUSTOMER, "PageSize": 50}).status_code == 200


def test_a_page_token_survives_deletions(raw, emulator):
    sids = [raw.post(f"{emulator.url}/v1/Conversations").json()["sid"] for _ in range(4)]
    first = raw.get(f"{emulator.url}/v1/Conversations", params={"PageSize": 2}).json()
    raw.delete(f"{emulator.url}/v1/Conversations/{sids[0]}")
    next_url = first["meta"]["next_page_url"].replace(
        "https://conversations.twilio.com", emulator.url
    )
    second = raw.get(next_url).json()
    assert [c["sid"] for c in second["conversations"]] == sids[2:]


def test_participant_conversations_by_address_or_identity(conversations, raw, emulator):
    first, second = conversations.conversations.create(), conversations.conversations.create()
    first.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    first.update(state="closed")
    second.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address="+15550002222"
    )
    second.participants.create(identity="agent-7")
    found = conversations.participant_conversations.list(address=CUSTOMER)
    assert [(pc.conversation_sid, pc.conversation_state) for pc in found] == [
        (first.sid, "closed"),
        (second.sid, "active"),
    ]
    item = found[1]
    assert item.participant_messaging_binding["address"] == CUSTOMER
    assert item.participant_messaging_binding["type"] == "sms"
    assert item.participant_identity is None and item.participant_user_sid is None
    assert item.conversation_created_by == "system"
    by_identity = conversations.participant_conversations.list(identity="agent-7")
    assert [pc.conversation_sid for pc in by_identity] == [second.sid]
    assert by_identity[0].participant_user_sid.startswith("US")
    assert by_identity[0].participant_messaging_binding is None

    url = f"{emulator.url}/v1/ParticipantConversations"
    for params in ({}, {"Address": CUSTOMER, "Identity": "agent-7"}):
        answer = raw.get(url, params=params)
        assert answer.status_code == 400 and answer.json()["status"] == 400


def test_participants_list_fetch_update_and_identity_lookup(conversations):
    conversation = conversations.conversations.create()
    chat = conversation.participants.create(identity="agent-7", attributes='{"a": 1}')
    sms = conversation.participants.create(
        messaging_binding_address=CUSTOMER,
        messaging_binding_proxy_address=TWILIO_NUMBER,
        messaging_binding_projected_address="+15550003333",
    )
    assert chat.messaging_binding is None and chat.identity == "agent-7"
    assert sms.identity is None and sms.messaging_binding["projected_address"] == "+15550003333"
    assert [p.sid for p in conversation.participants.list()] == [chat.sid, sms.sid]
    assert conversation.participants("agent-7").fetch().sid == chat.sid
    updated = conversation.participants(chat.sid).update(
        attributes='{"a": 2}', role_sid="RL" + "b" * 32
    )
    assert (updated.attributes, updated.role_sid) == ('{"a": 2}', "RL" + "b" * 32)
    moved = conversation.participants(sms.sid).update(
        messaging_binding_proxy_address="+15550004444"
    )
    assert moved.messaging_binding["proxy_address"] == "+15550004444"
    # The old pair is free, the new one is held.
    other = conversations.conversations.create()
    assert other.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    ).sid
    with pytest.raises(TwilioRestException) as caught:
        other.participants.create(
            messaging_binding_address=CUSTOMER, messaging_binding_proxy_address="+15550004444"
        )
    assert caught.value.code == 50416


def test_messages_create_list_order_and_fetch(conversations):
    conversation = conversations.conversations.create()
    created = [
        conversation.messages.create(author="agent-7", body=f"m{i}", attributes='{"i": 1}')
        for i in range(3)
    ]
    assert [m.index for m in created] == [0, 1, 2]
    assert created[0].participant_sid is None
    assert created[0].links["delivery_receipts"].endswith(f"/Messages/{created[0].sid}/Receipts")
    assert [m.body for m in conversation.messages.list()] == ["m0", "m1", "m2"]
    assert [m.body for m in conversation.messages.list(order="desc")] == ["m2", "m1", "m0"]
    assert [m.body for m in conversation.messages.list(order="desc", page_size=1)] == [
        "m2",
        "m1",
        "m0",
    ]
    assert conversation.messages(created[1].sid).fetch().body == "m1"


def test_webhook_configuration_of_a_service_and_of_the_account(conversations, emulator):
    service = conversations.services(emulator.default_service_sid).configuration.webhooks()
    initial = service.fetch()
    assert (initial.pre_webhook_url, initial.post_webhook_url) == (None, None)
    assert (initial.filters, initial.method) == ([], "POST")
    updated = service.update(
        pre_webhook_url="https://example.com/pre",
        post_webhook_url="https://example.com/post",
        filters=["onParticipantAdd", "onParticipantAdded"],
        method="GET",
    )
    assert updated.filters == ["onParticipantAdd", "onParticipantAdded"]
    assert (updated.method, updated.chat_service_sid) == ("GET", emulator.default_service_sid)
    assert service.fetch().pre_webhook_url == "https://example.com/pre"

    account = conversations.configuration.webhooks()
    assert account.fetch().target == "webhook"
    changed = account.update(post_webhook_url="https://example.com/account", target="webhook")
    assert changed.post_webhook_url == "https://example.com/account"
    assert changed.url == f"{BASE}/Configuration/Webhooks"
    with pytest.raises(TwilioRestException) as caught:
        service.update(method="PUT")
    assert caught.value.status == 400


def test_unknown_routes_and_methods(raw, emulator):
    answer = raw.get(f"{emulator.url}/v1/Nothing/Here")
    assert answer.status_code == 404
    assert answer.json() == {
        "code": 20404,
        "message": "The requested resource /v1/Nothing/Here was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }
    assert raw.get(f"{emulator.url}/elsewhere").json()["code"] == 20404
    assert raw.delete(f"{emulator.url}/v1/Services").status_code == 405


def test_error_bodies_have_exactly_twilio_keys(raw, emulator):
    answer = raw.get(f"{emulator.url}/v1/Conversations/CH" + "0" * 32)
    assert set(answer.json()) == {"code", "message", "more_info", "status"}
    assert answer.headers["Content-Type"] == "application/json"


def test_sids_are_prefix_and_32_lowercase_hex(conversations):
    conversation = conversations.conversations.create()
    participant = conversation.participants.create(identity="a")
    message = conversation.messages.create(body="x")
    for sid, prefix in ((conversation.sid, "CH"), (participant.sid, "MB"), (message.sid, "IM")):
        assert sid[:2] == prefix and len(sid) == 34
        assert sid[2:] == sid[2:].lower() and int(sid[2:], 16) >= 0


def test_chat_service_sid_where_twilio_has_it(conversations, emulator, raw):
    """Twilio's description gives service-scoped participants and messages a chat_service_sid,
    and the default-service form none; the contract check of every answer holds the rest."""
    service = conversations.services.create(friendly_name="second")
    scoped = conversations.services(service.sid).conversations.create()
    participant = (
        conversations.services(service.sid)
        .conversations(scoped.sid)
        .participants.create(identity="agent-7")
    )
    message = (
        conversations.services(service.sid).conversations(scoped.sid).messages.create(body="x")
    )
    assert (participant.chat_service_sid, message.chat_service_sid) == (service.sid, service.sid)
    assert scoped.chat_service_sid == service.sid

    plain = conversations.conversations.create()
    plain.participants.create(identity="agent-7")
    plain.messages.create(body="x")
    base = f"{emulator.url}/v1/Conversations/{plain.sid}"
    for path in ("Participants", "Messages"):
        [item] = raw.get(f"{base}/{path}").json()[path.lower()]
        assert "chat_service_sid" not in item


def test_the_last_message_is_one_call_away(conversations, raw, emulator):
    """Order=desc&PageSize=1 answers the newest message only, as a reader judging idleness asks."""
    conversation = conversations.conversations.create()
    sids = [conversation.messages.create(body=f"m{i}").sid for i in range(3)]
    url = f"{emulator.url}/v1/Conversations/{conversation.sid}/Messages"
    for order in ("desc", "DeSc"):
        page = raw.get(url, params={"Order": order, "PageSize": 1}).json()
        assert [m["sid"] for m in page["messages"]] == [sids[2]]
        assert page["meta"]["page_size"] == 1
        assert "Order=desc" in page["meta"]["next_page_url"]
    following = raw.get(page["meta"]["next_page_url"].replace(BASE[:-3], emulator.url)).json()
    assert [m["sid"] for m in following["messages"]] == [sids[1]]
    [newest] = conversation.messages.list(order="desc", limit=1)
    assert newest.sid == sids[2]
    assert raw.get(url, params={"Order": "sideways"}).status_code == 400
    assert raw.get(url, params={"PageSize": 101}).status_code == 400
    assert [m["sid"] for m in raw.get(url, params={"PageSize": 2}).json()["messages"]] == sids[:2]
