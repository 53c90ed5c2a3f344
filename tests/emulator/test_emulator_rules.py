"""Twilio's rules, one test each, through the official client."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"
OTHER_NUMBER = "+15550002222"


def add_pair(conversation, address=CUSTOMER, proxy=TWILIO_NUMBER, **kwargs):
    return conversation.participants.create(
        messaging_binding_address=address, messaging_binding_proxy_address=proxy, **kwargs
    )


def error_of(call, *args, **kwargs) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call(*args, **kwargs)
    return caught.value


# -- 50416: the pair held by another non-closed conversation --------------------------------------


def test_50416_names_the_holder_and_answers_409(conversations):
    holder = conversations.conversations.create()
    other = conversations.conversations.create()
    add_pair(holder)
    error = error_of(add_pair, other)
    assert (error.code, error.status) == (50416, 409)
    assert error.msg.endswith(
        "A binding for this participant and proxy address already exists in Conversation "
        + holder.sid
    )


def test_an_inactive_holder_still_holds_the_pair(conversations):
    holder = conversations.conversations.create()
    add_pair(holder)
    holder.update(state="inactive")
    assert error_of(add_pair, conversations.conversations.create()).code == 50416


def test_the_pair_is_held_across_services(conversations):
    service = conversations.services.create(friendly_name="second service")
    holder = conversations.conversations.create()
    add_pair(holder)
    elsewhere = conversations.services(service.sid).conversations.create()
    error = error_of(add_pair, elsewhere)
    assert error.code == 50416 and holder.sid in error.msg


def test_closing_the_holder_releases_the_pair(conversations):
    holder, other = conversations.conversations.create(), conversations.conversations.create()
    add_pair(holder)
    holder.update(state="closed")
    assert add_pair(other).conversation_sid == other.sid


def test_deleting_the_holder_releases_the_pair(conversations):
    holder, other = conversations.conversations.create(), conversations.conversations.create()
    add_pair(holder)
    assert holder.delete() is True
    assert add_pair(other).conversation_sid == other.sid


def test_removing_the_participant_releases_the_pair(conversations):
    holder, other = conversations.conversations.create(), conversations.conversations.create()
    participant = add_pair(holder)
    assert holder.participants(participant.sid).delete() is True
    assert add_pair(other).conversation_sid == other.sid


def test_the_same_address_through_another_proxy_is_a_different_pair(conversations):
    first, second = conversations.conversations.create(), conversations.conversations.create()
    add_pair(first)
    assert add_pair(second, proxy=OTHER_NUMBER).messaging_binding["proxy_address"] == OTHER_NUMBER


def test_whatsapp_pairs_follow_the_same_rule(conversations):
    first, second = conversations.conversations.create(), conversations.conversations.create()
    added = add_pair(first, f"whatsapp:{CUSTOMER}", f"whatsapp:{TWILIO_NUMBER}")
    assert added.messaging_binding["type"] == "whatsapp"
    assert error_of(add_pair, second, f"whatsapp:{CUSTOMER}", f"whatsapp:{TWILIO_NUMBER}").code == (
        50416
    )
    # The SMS pair of the same numbers is another pair.
    assert add_pair(second).messaging_binding["type"] == "sms"


# -- 50437 and 50433: already in this conversation ------------------------------------------------


def test_50437_for_the_same_pair_in_the_same_conversation(conversations):
    conversation = conversations.conversations.create()
    add_pair(conversation)
    error = error_of(add_pair, conversation)
    assert (error.code, error.status) == (50437, 409)


def test_50433_for_the_same_identity_in_the_same_conversation(conversations):
    conversation = conversations.conversations.create()
    conversation.participants.create(identity="agent-7")
    error = error_of(conversation.participants.create, identity="agent-7")
    assert (error.code, error.status) == (50433, 409)
    # The same identity in another conversation is fine.
    assert conversations.conversations.create().participants.create(identity="agent-7").sid


# -- address validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "proxy", "code"),
    [
        ("5551230001", TWILIO_NUMBER, 50407),
        ("+1555", TWILIO_NUMBER, 50407),
        ("whatsapp:5551230001", "whatsapp:+15550001111", 50407),
        (CUSTOMER, "not-a-number", 50408),
        (CUSTOMER, CUSTOMER, 50409),
        ("", TWILIO_NUMBER, 50411),
        (CUSTOMER, "", 50412),
        (CUSTOMER, f"whatsapp:{TWILIO_NUMBER}", 50414),
        (f"whatsapp:{CUSTOMER}", TWILIO_NUMBER, 50414),
    ],
)
def test_invalid_bindings_answer_400_with_their_code(conversations, address, proxy, code):
    conversation = conversations.conversations.create()
    error = error_of(add_pair, conversation, address, proxy)
    assert (error.code, error.status) == (code, 400)


@pytest.mark.parametrize(
    ("address", "proxy", "channel"),
    [
        ("+6834001", "+6834002", "sms"),  # Niue: 7 digits in all
        ("+290 2345".replace(" ", ""), TWILIO_NUMBER, "sms"),
        ("+" + "9" * 15, TWILIO_NUMBER, "sms"),
        ("whatsapp:+6834001", "whatsapp:+15550001111", "whatsapp"),
        ("messenger:2738492049184756", "messenger:104839201928374", "messenger"),
        ("gbm:customer-7f3a", "gbm:agent-3c1d", "gbm"),
        ("rcs:+15551230001", "rcs:brand_agent", "rcs"),
        ("apple:urn:mbid:AQAAYyUbut6E4B3T9FLv5EbG", "apple:business-1", "apple"),
        ("email:customer@example.com", "email:support@example.com", "email"),
    ],
)
def test_every_channel_twilio_documents_is_a_pair(conversations, address, proxy, channel):
    first, second = conversations.conversations.create(), conversations.conversations.create()
    added = add_pair(first, address, proxy)
    assert added.messaging_binding == {"type": channel, "address": address, "proxy_address": proxy}
    error = error_of(add_pair, second, address, proxy)
    assert error.code == 50416 and first.sid in error.msg
    found = conversations.participant_conversations.list(address=address)
    assert [pc.participant_messaging_binding["type"] for pc in found] == [channel]


@pytest.mark.parametrize(
    ("address", "proxy", "code"),
    [
        ("+123456", TWILIO_NUMBER, 50407),  # 6 digits: shorter than any numbering plan
        ("+" + "9" * 16, TWILIO_NUMBER, 50407),
        ("+15551230001\n", TWILIO_NUMBER, 50407),
        ("messenger:", "messenger:104839201928374", 50407),
        ("messenger:has space", "messenger:104839201928374", 50407),
        ("telegram:12345", "telegram:678", 50407),
        ("messenger:" + "1" * 247, "messenger:104839201928374", 50407),  # 257 characters
        ("messenger:2738492049184756", "messenger:" + "1" * 247, 50408),
        ("messenger:2738492049184756", TWILIO_NUMBER, 50414),
        (f"whatsapp:{CUSTOMER}", "messenger:104839201928374", 50414),
    ],
)
def test_addresses_no_channel_takes_are_refused(conversations, address, proxy, code):
    error = error_of(add_pair, conversations.conversations.create(), address, proxy)
    assert (error.code, error.status) == (code, 400)


def test_an_address_of_256_characters_is_taken(conversations):
    address = "messenger:" + "1" * 246
    assert len(address) == 256
    assert add_pair(conversations.conversations.create(), address, "messenger:1").sid


# -- Group MMS ------------------------------------------------------------------------------------

GROUP = ["+15551230001", "+15551230002"]


def test_group_mms_participants_have_an_address_and_no_proxy(conversations, emulator, raw):
    first, second = conversations.conversations.create(), conversations.conversations.create()
    members = [first.participants.create(messaging_binding_address=a) for a in GROUP]
    assert [m.messaging_binding for m in members] == [{"type": "sms", "address": a} for a in GROUP]
    agent = first.participants.create(
        identity="agent-7", messaging_binding_projected_address=TWILIO_NUMBER
    )
    assert agent.messaging_binding == {"type": "sms", "projected_address": TWILIO_NUMBER}
    # No pair, so no binding rule: the same address in another group, and as a pair elsewhere.
    assert second.participants.create(messaging_binding_address=GROUP[0]).sid
    assert add_pair(conversations.conversations.create(), GROUP[0], TWILIO_NUMBER).sid
    found = conversations.participant_conversations.list(address=GROUP[0])
    assert [pc.conversation_sid for pc in found][:2] == [first.sid, second.sid]
    assert found[0].participant_messaging_binding["proxy_address"] is None
    # The same address twice in one group: 50437.
    error = error_of(first.participants.create, messaging_binding_address=GROUP[0])
    assert (error.code, error.status) == (50437, 409)
    # A chat participant of a Group MMS needs a projected address: 50434.
    error = error_of(first.participants.create, identity="agent-8")
    assert (error.code, error.status) == (50434, 400)
    # A conversation without a Group MMS participant takes chat participants as before.
    assert conversations.conversations.create().participants.create(identity="agent-8").sid
    # An unattached projected address (a Twilio number of the group).
    number = first.participants.create(messaging_binding_projected_address="+15550002222")
    assert number.identity is None and number.messaging_binding["projected_address"]
    assert error_of(
        first.participants.create, messaging_binding_projected_address="+15550002222"
    ).code == (50437)


def test_only_sms_addresses_join_without_a_proxy(conversations):
    conversation = conversations.conversations.create()
    for address, code in (
        (f"whatsapp:{CUSTOMER}", 50412),
        ("messenger:2738492049184756", 50412),
        ("5551230001", 50407),
    ):
        error = error_of(conversation.participants.create, messaging_binding_address=address)
        assert (error.code, error.status) == (code, 400), address


def test_a_group_mms_participant_given_a_proxy_becomes_a_pair(conversations):
    group, other = conversations.conversations.create(), conversations.conversations.create()
    member = group.participants.create(messaging_binding_address=CUSTOMER)
    moved = group.participants(member.sid).update(messaging_binding_proxy_address=TWILIO_NUMBER)
    assert moved.messaging_binding["proxy_address"] == TWILIO_NUMBER
    assert error_of(add_pair, other).code == 50416


def test_a_participant_needs_an_identity_or_a_binding(raw, emulator):
    conversation = raw.post(f"{emulator.url}/v1/Conversations").json()
    answer = raw.post(
        f"{emulator.url}/v1/Conversations/{conversation['sid']}/Participants",
        data={"Attributes": "{}"},
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == 50411
    assert "Identity" in answer.json()["message"]


def test_identity_and_binding_together_are_refused(conversations):
    conversation = conversations.conversations.create()
    error = error_of(add_pair, conversation, identity="agent-7")
    assert error.status == 400


# -- unique names ---------------------------------------------------------------------------------


def test_50353_for_a_taken_unique_name(conversations):
    conversations.conversations.create(unique_name="ticket-1")
    error = error_of(conversations.conversations.create, unique_name="ticket-1")
    assert (error.code, error.status) == (50353, 409)


def test_50353_when_renaming_onto_a_taken_unique_name(conversations):
    conversations.conversations.create(unique_name="ticket-1")
    other = conversations.conversations.create(unique_name="ticket-2")
    assert error_of(other.update, unique_name="ticket-1").code == 50353


def test_unique_names_are_per_service_and_freed_by_delete(conversations):
    service = conversations.services.create(friendly_name="other")
    first = conversations.conversations.create(unique_name="ticket-1")
    assert conversations.services(service.sid).conversations.create(unique_name="ticket-1").sid
    first.delete()
    assert conversations.conversations.create(unique_name="ticket-1").sid


# -- closed is final ------------------------------------------------------------------------------


@pytest.fixture
def closed(conversations):
    conversation = conversations.conversations.create()
    participant = conversation.participants.create(identity="agent-7")
    conversation.update(state="closed")
    return conversation, participant


@pytest.mark.parametrize(
    "change",
    [
        lambda c, p: c.update(friendly_name="renamed"),
        lambda c, p: c.update(state="active"),
        lambda c, p: c.update(state="closed"),
        lambda c, p: c.participants.create(identity="agent-8"),
        lambda c, p: add_pair(c),
        lambda c, p: c.participants(p.sid).update(attributes='{"x": 1}'),
        lambda c, p: c.participants(p.sid).delete(),
        lambda c, p: c.messages.create(author="agent-7", body="hello?"),
    ],
    ids=[
        "rename",
        "reopen",
        "close-again",
        "add-chat",
        "add-sms",
        "update-participant",
        "remove-participant",
        "message",
    ],
)
def test_50377_for_any_change_to_a_closed_conversation(closed, change):
    conversation, participant = closed
    error = error_of(change, conversation, participant)
    assert (error.code, error.status) == (50377, 400)


def test_a_closed_conversation_can_still_be_read_and_deleted(closed):
    conversation, _ = closed
    assert conversation.fetch().state == "closed"
    assert conversation.delete() is True


# -- timers and creation --------------------------------------------------------------------------


def test_50382_for_timers_on_create_without_state(conversations):
    error = error_of(conversations.conversations.create, timers_inactive="PT5M")
    assert (error.code, error.status) == (50382, 400)
    created = conversations.conversations.create(
        state="active", timers_inactive="PT5M", timers_closed="P1D"
    )
    assert set(created.timers) == {"date_inactive", "date_closed"}


def test_timers_must_be_iso_durations_of_at_least_the_minimum(conversations):
    assert (
        error_of(conversations.conversations.create, state="active", timers_inactive="5m").status
        == 400
    )
    assert (
        error_of(conversations.conversations.create, state="active", timers_inactive="PT30S").status
        == 400
    )
    assert (
        error_of(conversations.conversations.create, state="active", timers_closed="PT5M").status
        == 400
    )


# -- not found ------------------------------------------------------------------------------------


def test_50350_for_an_unknown_conversation(conversations):
    missing = "CH" + "0" * 32
    for call in (
        conversations.conversations(missing).fetch,
        lambda: conversations.conversations(missing).update(friendly_name="x"),
        conversations.conversations(missing).delete,
        lambda: conversations.conversations(missing).participants.create(identity="a"),
        conversations.conversations(missing).participants("MB" + "0" * 32).fetch,
        lambda: conversations.conversations(missing).messages.create(body="x"),
        lambda: conversations.conversations("no-such-unique-name").fetch(),
    ):
        error = error_of(call)
        assert (error.code, error.status) == (50350, 404)


def test_20404_for_other_unknown_resources(conversations):
    conversation = conversations.conversations.create()
    for call in (
        conversation.participants("MB" + "0" * 32).fetch,
        conversation.participants("MB" + "0" * 32).delete,
        conversation.messages("IM" + "0" * 32).fetch,
        conversations.services("IS" + "0" * 32).fetch,
        conversations.services("IS" + "0" * 32).conversations(conversation.sid).fetch,
    ):
        error = error_of(call)
        assert (error.code, error.status) == (20404, 404)


def test_conversations_of_another_service_are_not_in_the_default_one(conversations):
    service = conversations.services.create(friendly_name="other")
    elsewhere = conversations.services(service.sid).conversations.create()
    assert error_of(conversations.conversations(elsewhere.sid).fetch).code == 50350
