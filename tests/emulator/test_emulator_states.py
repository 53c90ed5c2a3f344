"""States, timers and the emulator's clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from emulator import EmulatorConfig, start_in_thread
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
