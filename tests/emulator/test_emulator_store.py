"""The Store in-process, as a Twilio stand-in built on it uses it: a clock that has only `now()`,
a publisher that records events, and snapshots, never live records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator.errors import BindingInUse
from emulator.store import AutoCreationChange, Origin, ParticipantSpec, Store

SERVICE = "IS" + "1" * 32
CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"
API = Origin.api(True)


class ManualClock:
    """Only `now()`: the Store must ask it for every time it writes."""

    def __init__(self) -> None:
        self.moment = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def events() -> list:
    return []


@pytest.fixture
def store(clock, events) -> Store:
    return Store(clock, "AC" + "2" * 32, SERVICE, "MG" + "3" * 32, publish=events.append)


def pair(address=CUSTOMER, proxy=TWILIO_NUMBER) -> ParticipantSpec:
    return ParticipantSpec(address=address, proxy_address=proxy)


def test_every_time_comes_from_the_clock(store, clock):
    conversation = store.create_conversation(
        SERVICE, state="active", timer_inactive="PT5M", origin=API
    )
    assert conversation.date_created == clock.moment
    assert conversation.date_inactive == clock.moment + timedelta(minutes=5)
    clock.moment += timedelta(minutes=1)
    participant = store.add_participant(SERVICE, conversation.sid, pair(), origin=API)
    message = store.add_message(
        SERVICE, conversation.sid, author=CUSTOMER, body="hi", attributes=None, origin=API
    )
    assert participant.date_created == message.date_created == clock.moment
    clock.moment += timedelta(minutes=4)  # 5 minutes after creation, 4 after the message
    assert store.fire_due_timers() == 0  # the message re-armed the timer
    clock.moment += timedelta(minutes=1)
    assert store.fire_due_timers() == 1
    assert store.get_conversation(SERVICE, conversation.sid).state == "inactive"


def test_events_reach_the_publisher_in_order(store, events):
    conversation = store.create_conversation(SERVICE, origin=API)
    store.add_participant(SERVICE, conversation.sid, pair(), origin=API)
    store.update_conversation(SERVICE, conversation.sid, state="closed", origin=API)
    assert [e.event_type for e in events] == [
        "onConversationAdded",
        "onParticipantAdded",
        "onConversationUpdated",
        "onConversationStateUpdated",
    ]
    assert events[1].params["MessagingBinding.Address"] == CUSTOMER


def test_the_binding_rule_and_the_holder(store):
    holder = store.create_conversation(SERVICE, origin=API)
    other = store.create_conversation(SERVICE, origin=API)
    added = store.add_participant(SERVICE, holder.sid, pair(), origin=API)
    with pytest.raises(BindingInUse) as caught:
        store.add_participant(SERVICE, other.sid, pair(), origin=API)
    assert caught.value.holder_sid == holder.sid
    found = store.holder_of(CUSTOMER, TWILIO_NUMBER)
    assert found is not None and (found[0].sid, found[1].sid) == (holder.sid, added.sid)
    store.remove_participant(SERVICE, holder.sid, added.sid, origin=API)
    assert store.holder_of(CUSTOMER, TWILIO_NUMBER) is None
    assert store.counts() == {"services": 1, "conversations": 2, "bindings": 0}


def test_answers_are_snapshots(store):
    conversation = store.create_conversation(SERVICE, friendly_name="before", origin=API)
    conversation.friendly_name = "changed outside"
    participant = store.add_participant(SERVICE, conversation.sid, pair(), origin=API)
    participant.attributes = "changed outside"
    assert store.get_conversation(SERVICE, conversation.sid).friendly_name == "before"
    assert store.get_participant(SERVICE, conversation.sid, participant.sid).attributes == "{}"


def test_inbound_without_pre_events_autocreates_then_routes(store, events):
    first = store.receive_inbound(CUSTOMER, TWILIO_NUMBER, "hello")
    second = store.receive_inbound(CUSTOMER, TWILIO_NUMBER, "again")
    assert first.created and not second.created
    assert first.conversation_sid == second.conversation_sid
    messages = store.list_messages(SERVICE, first.conversation_sid, order="desc")
    assert [m.body for m in messages] == ["again", "hello"]
    assert [e.event_type for e in events] == [
        "onConversationAdded",
        "onParticipantAdded",
        "onMessageAdded",
        "onMessageAdded",
    ]


def test_reset_keeps_the_default_service_only(store):
    store.create_service("second")
    store.create_conversation(SERVICE, origin=API)
    store.reset()
    assert [s.sid for s in store.list_services()] == [SERVICE]
    assert store.list_conversations(SERVICE) == []


def test_an_address_configuration_steers_autocreation(store):
    service = store.create_service("sales")
    configuration = store.create_address_configuration(
        "sms",
        TWILIO_NUMBER,
        auto_creation=AutoCreationChange(enabled=True, conversation_service_sid=service.sid),
    )
    outcome = store.receive_inbound(CUSTOMER, TWILIO_NUMBER, "hello")
    assert (outcome.service_sid, outcome.address_configuration_sid) == (
        service.sid,
        configuration.sid,
    )
    store.update_address_configuration(
        TWILIO_NUMBER, auto_creation=AutoCreationChange(enabled=False)
    )
    assert store.receive_inbound("+15551230002", TWILIO_NUMBER).not_routed
    store.delete_address_configuration(configuration.sid)
    assert store.list_address_configurations() == []
