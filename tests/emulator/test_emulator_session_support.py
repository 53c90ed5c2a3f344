"""What masked-number sessions need of the emulator: a conversation's own timers close it on
schedule with nobody calling the API (the clock advanced, or real time passing), announced by
onConversationStateUpdated; and an inbound message to a number whose pair no open conversation
holds goes where Twilio sends it (autocreation with its pre-event, or nowhere)."""

from __future__ import annotations

from datetime import timedelta

from emulator import EmulatorConfig, start_in_thread
from emulator.webhook_events import Origin

CUSTOMER = "+15551230001"
DRIVER = "+15551230002"
POOL_NUMBER = "+15550001111"
ON = {"x_twilio_webhook_enabled": "true"}


def _session(conversations, ttl: str = "PT10M"):
    """A conversation as a session makes it: a closed timer, the customer on a pool number."""
    conversation = conversations.conversations.create(state="active", timers_closed=ttl)
    conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=POOL_NUMBER, **ON
    )
    return conversation


def test_the_closed_timer_closes_on_clock_advance_and_says_so(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationStateUpdated")
    conversation = _session(conversations)
    assert admin.advance(9 * 60)["timers_fired"] == 0
    assert conversation.fetch().state == "active"
    assert admin.advance(61)["timers_fired"] == 1  # no API call in between
    [hook] = receiver.wait_for(1)
    assert hook.signature_valid
    assert hook.params["ConversationSid"] == conversation.sid
    assert (hook.params["StateFrom"], hook.params["StateTo"]) == ("active", "closed")
    assert hook.params["Reason"] == "TIMER"
    fetched = conversation.fetch()
    assert (fetched.state, fetched.timers) == ("closed", {})
    # The move happened at the timer's time, not when the clock was moved past it.
    assert fetched.date_updated - fetched.date_created == timedelta(minutes=10)


def test_inactive_then_closed_timers_fire_in_order_with_one_event_each(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationStateUpdated")
    conversation = conversations.conversations.create(
        state="active", timers_inactive="PT1M", timers_closed="PT10M"
    )
    assert admin.advance(3600)["timers_fired"] == 2
    hooks = receiver.wait_for(2)
    assert [(h.params["StateFrom"], h.params["StateTo"]) for h in hooks] == [
        ("active", "inactive"),
        ("inactive", "closed"),
    ]
    assert all(h.params["ConversationSid"] == conversation.sid for h in hooks)
    assert all(h.params["Reason"] == "TIMER" for h in hooks)
    admin.flush()
    assert len(receiver.wait_for(2)) == 2  # and no third


def test_timers_close_in_real_time_and_fire_the_post_event(receiver):
    """The ticker fires a due timer with no request at all, webhook included."""
    running = start_in_thread(EmulatorConfig(timer_tick=0.05, webhook_timeout=1.0))
    try:
        store, service = running.engine.store, running.default_service_sid
        store.update_webhook_config(
            service, post_webhook_url=receiver.post_url, filters=("onConversationStateUpdated",)
        )
        conversation = store.create_conversation(
            service, state="active", timer_closed="PT10M", origin=Origin.api(False)
        )
        running.engine.clock.advance(601)  # time passes; nothing fires it but the ticker
        [hook] = receiver.wait_for(1, timeout=5)
        assert (hook.params["StateTo"], hook.params["Reason"]) == ("closed", "TIMER")
        assert hook.params["ConversationSid"] == conversation.sid
        assert store.get_conversation(service, conversation.sid).state == "closed"
    finally:
        running.shutdown()


def test_after_the_timer_closed_it_an_inbound_message_autocreates_with_the_binding(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationAdd", "onConversationAdded", "onParticipantAdded")
    conversations.address_configurations.create(
        type="sms", address=POOL_NUMBER, auto_creation_enabled=True
    )
    old = _session(conversations)
    admin.advance(11 * 60)
    assert old.fetch().state == "closed"
    answer = admin.inbound(CUSTOMER, POOL_NUMBER, "are you still there?")
    assert answer.status_code == 200
    body = answer.json()
    assert body["created"] is True and body["conversation_sid"] != old.sid
    [pre] = receiver.wait_for(1, "/pre")
    assert pre.event_type == "onConversationAdd" and pre.signature_valid
    assert pre.params["MessagingBinding.Address"] == CUSTOMER
    assert pre.params["MessagingBinding.ProxyAddress"] == POOL_NUMBER
    assert pre.params["MessageBody"] == "are you still there?"
    [message] = conversations.conversations(body["conversation_sid"]).messages.list()
    assert (message.author, message.body) == (CUSTOMER, "are you still there?")


def test_a_refused_autocreation_leaves_the_pair_free(
    conversations, configure_webhooks, receiver, admin
):
    """What an out-of-session `reject` (or a session opened instead) relies on."""
    configure_webhooks("onConversationAdd", "onConversationAdded")
    receiver.answers["onConversationAdd"] = 409
    conversations.address_configurations.create(
        type="sms", address=POOL_NUMBER, auto_creation_enabled=True
    )
    answer = admin.inbound(CUSTOMER, POOL_NUMBER, "hello?")
    assert answer.status_code == 403
    assert answer.json()["rejected_by"] == "onConversationAdd"
    assert conversations.conversations.list() == []
    session = conversations.conversations.create()
    session.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=POOL_NUMBER
    )
    routed = admin.inbound(CUSTOMER, POOL_NUMBER, "now?").json()
    assert (routed["conversation_sid"], routed["created"]) == (session.sid, False)


def test_with_autocreation_off_the_message_reaches_no_conversation(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationAdd", "onConversationAdded", "onMessageAdded")
    conversations.address_configurations.create(
        type="sms", address=POOL_NUMBER, auto_creation_enabled=False
    )
    other = _session(conversations)  # the customer on another number does not catch it
    other.participants.create(
        messaging_binding_address=DRIVER, messaging_binding_proxy_address="+15550002222"
    )
    answer = admin.inbound(DRIVER, POOL_NUMBER, "hi")
    assert answer.status_code == 200
    assert answer.json()["conversation_sid"] is None
    assert [c.sid for c in conversations.conversations.list()] == [other.sid]
    admin.flush()
    assert receiver.events("/pre") == []


def test_with_autocreation_off_the_numbers_own_sms_webhook_gets_the_message(
    conversations, configure_webhooks, receiver, admin
):
    """Twilio hands a message no conversation takes to the number's Programmable Messaging
    webhook (SmsUrl), signed, outside Conversations."""
    configure_webhooks("onConversationAdd", "onConversationAdded")
    conversations.address_configurations.create(
        type="sms", address=POOL_NUMBER, auto_creation_enabled=False
    )
    sms_url = receiver.url + "/sms"
    answer = admin.post("numbers", {"number": POOL_NUMBER, "sms_url": sms_url})
    assert answer.json() == {
        "numbers": [{"number": POOL_NUMBER, "sms_url": sms_url, "sms_method": "POST"}]
    }
    routed = admin.inbound(CUSTOMER, POOL_NUMBER, "anyone there?").json()
    assert routed["conversation_sid"] is None
    [hook] = receiver.wait_for(1, "/sms")
    assert hook.signature_valid and "EventType" not in hook.params
    assert (hook.params["From"], hook.params["To"], hook.params["Body"]) == (
        CUSTOMER,
        POOL_NUMBER,
        "anyone there?",
    )
    assert hook.params["MessageSid"] == routed["sms_webhook_message_sid"]
    assert hook.params["MessageSid"].startswith("SM")
    assert receiver.events("/pre") == [] and conversations.conversations.list() == []
    # A number that autocreates does not call it; a reset forgets it.
    admin.post("reset")
    assert admin.get("numbers") == {"numbers": []}


def test_a_message_a_conversation_takes_never_reaches_the_sms_webhook(
    conversations, receiver, admin
):
    admin.post("numbers", {"number": POOL_NUMBER, "sms_url": receiver.url + "/sms"})
    assert admin.inbound(CUSTOMER, POOL_NUMBER, "hi").json()["created"] is True
    admin.flush()
    assert receiver.events("/sms") == []
    bad = admin.post("numbers", {"number": POOL_NUMBER, "sms_url": "x", "sms_method": "PUT"})
    assert bad.status_code == 400 and "sms_method" in bad.json()["message"]
