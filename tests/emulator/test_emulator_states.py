"""States, timers and the emulator's clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from click.testing import CliRunner

from emulator import EmulatorConfig, start_in_thread
from emulator.cli import emulator_command
from emulator.store import ParticipantSpec
from emulator.webhook_events import Origin

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_dates_are_iso_utc_seconds_from_the_emulator_clock(conversations, admin):
    before = conversations.conversations.create()
    admin.advance(3 * 86400)
    after = conversations.conversations.create()
    assert after.date_created - before.date_created >= timedelta(days=3)
    clock = admin.get("clock")["now"]
    assert len(clock) == 20 and clock.endswith("Z")
    assert abs(parse(clock) - after.date_created) < timedelta(seconds=5)


def test_the_date_header_is_the_emulator_clock(raw, emulator, admin):
    admin.advance(7200)
    answer = raw.get(f"{emulator.url}/v1/Conversations")
    told = parsedate_to_datetime(answer.headers["Date"]).replace(tzinfo=UTC)
    assert told - datetime.now(UTC) > timedelta(seconds=7000)


def test_timers_fire_on_clock_advance(conversations, admin):
    conversation = conversations.conversations.create(
        state="active", timers_inactive="PT5M", timers_closed="PT30M"
    )
    created = conversation.date_created
    assert parse(conversation.timers["date_inactive"]) - created == timedelta(minutes=5)
    assert parse(conversation.timers["date_closed"]) - created == timedelta(minutes=30)

    assert admin.advance(6 * 60)["timers_fired"] == 1
    fetched = conversation.fetch()
    assert fetched.state == "inactive"
    assert set(fetched.timers) == {"date_closed"}

    assert admin.advance(30 * 60)["timers_fired"] == 1
    fetched = conversation.fetch()
    assert (fetched.state, fetched.timers) == ("closed", {})


def test_one_big_advance_fires_both_timers_in_order(conversations, admin):
    conversation = conversations.conversations.create(
        state="active", timers_inactive="PT5M", timers_closed="PT10M"
    )
    assert admin.advance(86400)["timers_fired"] == 2
    fetched = conversation.fetch()
    assert fetched.state == "closed"
    assert fetched.date_updated - fetched.date_created == timedelta(minutes=10)


def test_a_timer_close_releases_the_pair(conversations, admin):
    holder = conversations.conversations.create(state="active", timers_closed="PT10M")
    holder.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    admin.advance(11 * 60)
    other = conversations.conversations.create()
    added = other.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    assert added.conversation_sid == other.sid


def test_timers_set_by_update_and_reset_by_activity(conversations, admin):
    conversation = conversations.conversations.create()
    assert conversation.timers == {}
    updated = conversation.update(timers_inactive="PT10M")
    assert set(updated.timers) == {"date_inactive"}
    admin.advance(8 * 60)
    conversation.messages.create(author="agent-7", body="still here")
    admin.advance(8 * 60)  # 16 minutes since the timer was set, 8 since the last message
    assert conversation.fetch().state == "active"
    admin.advance(3 * 60)
    assert conversation.fetch().state == "inactive"


def test_states_move_by_rest_and_closed_is_final(conversations):
    conversation = conversations.conversations.create(state="inactive")
    assert conversation.state == "inactive"
    assert conversation.update(state="active").state == "active"
    assert conversation.update(state="closed").state == "closed"
    listed = conversations.conversations.list(state="closed")
    assert [c.sid for c in listed] == [conversation.sid]


def test_an_inbound_message_reactivates_an_inactive_conversation(conversations, admin):
    conversation = conversations.conversations.create()
    conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    conversation.update(state="inactive")
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER, "back again")
    assert answer.status_code == 200
    assert answer.json()["conversation_sid"] == conversation.sid
    assert answer.json()["created"] is False
    assert conversation.fetch().state == "active"
    [message] = conversation.messages.list()
    assert (message.author, message.body) == (CUSTOMER, "back again")


def test_a_rest_message_also_reactivates(conversations):
    conversation = conversations.conversations.create(state="inactive")
    conversation.messages.create(author="agent-7", body="hello")
    assert conversation.fetch().state == "active"


def test_timers_fire_in_real_time_with_the_ticker():
    """The background ticker fires timers whose time came without a clock advance."""
    running = start_in_thread(EmulatorConfig(timer_tick=0.05))
    try:
        store = running.engine.store
        conversation = store.create_conversation(
            running.default_service_sid,
            state="active",
            timer_inactive="PT1M",
            origin=Origin.api(False),
        )
        running.engine.clock.advance(61)  # moves time without firing anything itself
        deadline = time.monotonic() + 5
        while store.get_conversation(running.default_service_sid, conversation.sid).state != (
            "inactive"
        ):
            assert time.monotonic() < deadline, "the ticker did not fire the timer"
            time.sleep(0.02)
    finally:
        running.shutdown()


def test_the_clock_and_info_endpoints(admin, emulator):
    info = admin.get("")
    assert info["account_sid"] == emulator.account_sid
    assert info["default_service_sid"] == emulator.default_service_sid
    before = parse(admin.get("clock")["now"])
    after = parse(admin.advance(90)["now"])
    assert after - before >= timedelta(seconds=90)
    assert admin.post("clock", {"advance_seconds": -5}).status_code == 400
    assert admin.post("clock", {"advance_seconds": "soon"}).status_code == 400


# -- what bumps date_updated -----------------------------------------------------------------


def test_by_default_updates_states_and_messages_bump_date_updated(conversations, admin):
    assert admin.get("")["date_updated_on"] == ["update", "state", "message"]
    conversation = conversations.conversations.create(state="active", timers_inactive="PT5M")
    created = conversation.date_created
    admin.advance(60)
    conversation.participants.create(identity="agent-7")
    assert conversation.fetch().date_updated == created  # participants do not bump it
    conversation.messages.create(author="agent-7", body="hi")
    after_message = conversation.fetch().date_updated
    assert after_message - created >= timedelta(seconds=60)
    admin.advance(6 * 60)
    fetched = conversation.fetch()
    assert fetched.state == "inactive"
    assert fetched.date_updated - after_message == timedelta(minutes=5)  # the timer's move
    admin.advance(60)
    assert conversation.update(attributes="{}").date_updated - fetched.date_updated >= (
        timedelta(seconds=60)
    )


def store_of(causes):
    running = start_in_thread(EmulatorConfig(timer_tick=0, date_updated_on=causes))
    return running, running.engine.store, running.default_service_sid


def test_date_updated_on_is_configurable():
    api = Origin.api(False)
    running, store, service = store_of(("participant",))
    try:
        conversation = store.create_conversation(
            service, state="active", timer_inactive="PT1M", origin=api
        )
        running.engine.clock.advance(30)
        store.add_message(
            service, conversation.sid, author="a", body="x", attributes=None, origin=api
        )
        store.update_conversation(service, conversation.sid, friendly_name="renamed", origin=api)
        assert store.get_conversation(service, conversation.sid).date_updated == (
            conversation.date_created
        )
        running.engine.advance_clock(120)  # the timer moves it; date_updated stays
        moved = store.get_conversation(service, conversation.sid)
        assert moved.state == "inactive" and moved.date_updated == conversation.date_created
        # The message re-armed the timer: it fired 60 s after it (real time moves a little too).
        since = moved.date_state_changed - conversation.date_created
        assert timedelta(seconds=90) <= since < timedelta(seconds=91)
        running.engine.clock.advance(30)
        store.add_participant(service, conversation.sid, ParticipantSpec(identity="x"), origin=api)
        touched = store.get_conversation(service, conversation.sid).date_updated
        since = touched - conversation.date_created  # 30 + 120 + 30 s of clock advances
        assert timedelta(seconds=180) <= since < timedelta(seconds=181)
    finally:
        running.shutdown()


def test_the_state_updated_parameter_is_the_move_even_when_date_updated_stays(
    conversations, configure_webhooks, receiver
):
    configure_webhooks("onConversationStateUpdated")
    conversation = conversations.conversations.create()
    updated = conversation.update(state="inactive", x_twilio_webhook_enabled="true")
    [hook] = receiver.wait_for(1)
    assert parse(hook.params["StateUpdated"]) == updated.date_updated


def test_unknown_causes_are_refused():
    with pytest.raises(ValueError, match="unknown date_updated cause"):
        start_in_thread(EmulatorConfig(date_updated_on=("message", "weather")))
    result = CliRunner().invoke(emulator_command, ["--date-updated-on", "message,weather"])
    assert result.exit_code == 2 and "weather" in result.output
