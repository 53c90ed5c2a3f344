"""Webhooks as Twilio sends them, checked at a receiver that validates every signature."""

from __future__ import annotations

import json
import time

import requests

from emulator import EmulatorConfig, start_in_thread

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"
ALL_POST = [
    "onConversationAdded",
    "onConversationUpdated",
    "onConversationRemoved",
    "onConversationStateUpdated",
    "onParticipantAdded",
    "onParticipantUpdated",
    "onParticipantRemoved",
    "onMessageAdded",
]
ALL_PRE = ["onConversationAdd", "onParticipantAdd", "onMessageAdd"]
ON = {"x_twilio_webhook_enabled": "true"}


def test_rest_changes_without_the_header_fire_nothing(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks(*ALL_PRE, *ALL_POST)
    conversation = conversations.conversations.create()
    participant = conversation.participants.create(identity="agent-7")
    conversation.participants(participant.sid).update(attributes='{"a": 1}')
    conversation.messages.create(author="agent-7", body="hello")
    conversation.update(state="closed")
    conversation.delete()
    admin.flush()
    assert receiver.hooks == []
    assert admin.stats()["webhooks"] == {"sent": 0, "failed": 0, "rejected": 0}


def test_rest_changes_with_the_header_fire_signed_post_events_only(
    conversations, configure_webhooks, receiver, admin, emulator, raw
):
    configure_webhooks(*ALL_PRE, *ALL_POST)
    conversation = conversations.conversations.create(
        friendly_name="support", attributes='{"topic": "billing"}', **ON
    )
    participant = conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER, **ON
    )
    conversation.participants(participant.sid).update(attributes='{"vip": true}', **ON)
    conversation.messages.create(author=CUSTOMER, body="hi", **ON)
    conversation.update(state="inactive", **ON)
    # twilio-python 9.13 drops X-Twilio-Webhook-Enabled on delete(), so deletes go by hand.
    base = f"{emulator.url}/v1/Conversations/{conversation.sid}"
    enabled = {"X-Twilio-Webhook-Enabled": "true"}
    assert raw.delete(f"{base}/Participants/{participant.sid}", headers=enabled).status_code == 204
    assert raw.delete(base, headers=enabled).status_code == 204

    admin.flush()
    hooks = receiver.wait_for(8)
    assert [h.event_type for h in hooks] == [
        "onConversationAdded",
        "onParticipantAdded",
        "onParticipantUpdated",
        "onMessageAdded",
        "onConversationUpdated",
        "onConversationStateUpdated",
        "onParticipantRemoved",
        "onConversationRemoved",
    ]
    assert receiver.events("/pre") == []  # REST never fires pre-events
    for hook in hooks:
        assert hook.signature_valid, hook
        assert hook.method == "POST"
        assert hook.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert hook.params["AccountSid"] == emulator.account_sid
        assert hook.params["Source"] == "API"
        assert hook.params["ConversationSid"] == conversation.sid
        assert "ClientIdentity" not in hook.params
    tokens = [h.headers["I-Twilio-Idempotency-Token"] for h in hooks]
    assert len(set(tokens)) == len(tokens)

    added, participant_added = hooks[0].params, hooks[1].params
    assert added["ChatServiceSid"] == emulator.default_service_sid
    assert added["FriendlyName"] == "support"
    assert json.loads(added["Attributes"]) == {"topic": "billing"}
    assert added["State"] == "active" and added["DateCreated"].endswith("Z")
    assert participant_added["ParticipantSid"] == participant.sid
    assert participant_added["MessagingBinding.Address"] == CUSTOMER
    assert participant_added["MessagingBinding.ProxyAddress"] == TWILIO_NUMBER
    assert participant_added["MessagingBinding.Type"] == "SMS"
    message = hooks[3].params
    assert (message["Body"], message["Author"], message["Index"]) == ("hi", CUSTOMER, "0")
    assert message["ParticipantSid"] == participant.sid and message["MessageSid"].startswith("IM")
    state = hooks[5].params
    assert (state["StateFrom"], state["StateTo"], state["Reason"]) == ("active", "inactive", "API")
    assert "DateRemoved" in hooks[6].params and "DateRemoved" in hooks[7].params


def test_filters_choose_the_events_and_none_means_nothing(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onParticipantAdded")
    conversation = conversations.conversations.create(**ON)
    conversation.participants.create(identity="agent-7", **ON)
    conversation.messages.create(author="agent-7", body="x", **ON)
    admin.flush()
    assert receiver.events() == ["onParticipantAdded"]

    configure_webhooks("onMessageAdded")
    conversation.participants.create(identity="agent-8", **ON)
    admin.flush()
    assert receiver.events() == ["onParticipantAdded"]


def test_no_filters_no_events(conversations, receiver, admin, emulator, raw):
    url = f"{emulator.url}/v1/Services/{emulator.default_service_sid}/Configuration/Webhooks"
    configured = raw.post(url, data={"PostWebhookUrl": receiver.post_url}).json()
    assert configured["filters"] == [] and configured["method"] == "POST"
    conversations.conversations.create(**ON)
    raw.post(url, data={"Filters": ["onConversationAdded", "onMessageAdded"]})
    assert raw.get(url).json()["filters"] == ["onConversationAdded", "onMessageAdded"]
    raw.post(url, data={"Filters": ""})  # an empty Filters clears the list
    assert raw.get(url).json()["filters"] == []
    conversations.conversations.create(**ON)
    admin.flush()
    assert receiver.hooks == []


def test_method_get_sends_a_signed_query_string(conversations, configure_webhooks, receiver, admin):
    configure_webhooks("onParticipantAdded", method="GET")
    conversation = conversations.conversations.create()
    conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER, **ON
    )
    [hook] = receiver.wait_for(1)
    assert hook.method == "GET"
    assert hook.signature_valid
    assert hook.params["MessagingBinding.Address"] == CUSTOMER
    assert "EventType=onParticipantAdded" in hook.url


def test_the_account_configuration_receives_events_too(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationAdded")
    conversations.configuration.webhooks().update(
        post_webhook_url=receiver.url + "/account", filters=["onConversationAdded"]
    )
    conversations.conversations.create(**ON)
    admin.flush()
    service_hook = receiver.wait_for(1, "/post")[0]
    account_hook = receiver.wait_for(1, "/account")[0]
    assert account_hook.signature_valid
    # One event, one token, whichever configuration it reached.
    assert (
        service_hook.headers["I-Twilio-Idempotency-Token"]
        == account_hook.headers["I-Twilio-Idempotency-Token"]
    )


def test_post_events_are_sent_off_the_request_path(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onMessageAdded")
    receiver.delays["onMessageAdded"] = 0.5
    conversation = conversations.conversations.create()
    started = time.monotonic()
    for number in range(3):
        conversation.messages.create(author="agent-7", body=str(number), **ON)
    assert time.monotonic() - started < 0.5  # the receiver takes 1.5 s for the three
    hooks = receiver.wait_for(3, timeout=5)
    assert [h.params["Body"] for h in hooks] == ["0", "1", "2"]


def test_post_events_keep_their_order_per_conversation(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onMessageAdded")
    first, second = conversations.conversations.create(), conversations.conversations.create()
    for number in range(15):
        first.messages.create(author="a", body=str(number), **ON)
        second.messages.create(author="b", body=str(number), **ON)
    admin.flush()
    for conversation in (first, second):
        indexes = [
            int(h.params["Index"])
            for h in receiver.hooks
            if h.params["ConversationSid"] == conversation.sid
        ]
        assert indexes == list(range(15))


def test_failed_post_events_are_counted(conversations, configure_webhooks, receiver, admin):
    configure_webhooks("onConversationAdded", "onParticipantAdded")
    receiver.answers["onParticipantAdded"] = 500
    conversation = conversations.conversations.create(**ON)
    conversation.participants.create(identity="agent-7", **ON)
    admin.flush()
    assert admin.stats()["webhooks"] == {"sent": 1, "failed": 1, "rejected": 0}


def test_timer_state_changes_fire_with_reason_timer(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationStateUpdated")
    conversation = conversations.conversations.create(state="active", timers_inactive="PT1M")
    admin.advance(120)
    [hook] = receiver.wait_for(1)
    assert hook.params["ConversationSid"] == conversation.sid
    assert (hook.params["StateFrom"], hook.params["StateTo"]) == ("active", "inactive")
    assert hook.params["Reason"] == "TIMER"
    assert hook.signature_valid


# -- SDK-originated actions: pre-event first ------------------------------------------------------


def sdk_add(admin, conversation_sid, **body):
    return admin.post("sdk/participants", {"conversation_sid": conversation_sid, **body})


def test_sdk_add_fires_pre_then_post(conversations, configure_webhooks, receiver, admin):
    configure_webhooks("onParticipantAdd", "onParticipantAdded")
    conversation = conversations.conversations.create()
    answer = sdk_add(admin, conversation.sid, identity="agent-7")
    assert answer.status_code == 201
    assert answer.json()["added"] is True
    [pre] = receiver.wait_for(1, "/pre")
    [post] = receiver.wait_for(1, "/post")
    assert pre.signature_valid and post.signature_valid
    assert (pre.event_type, post.event_type) == ("onParticipantAdd", "onParticipantAdded")
    for hook in (pre, post):
        assert hook.params["Source"] == "SDK"
        assert hook.params["ClientIdentity"] == "agent-7"
        assert hook.params["Identity"] == "agent-7"
    assert "ParticipantSid" not in pre.params
    assert post.params["ParticipantSid"] == answer.json()["participant_sid"]
    assert [p.identity for p in conversation.participants.list()] == ["agent-7"]


def test_a_rejecting_pre_event_stops_the_sdk_add(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onParticipantAdd", "onParticipantAdded")
    receiver.answers["onParticipantAdd"] = 403
    conversation = conversations.conversations.create()
    answer = sdk_add(admin, conversation.sid, address=CUSTOMER, proxy_address=TWILIO_NUMBER).json()
    assert answer == {"added": False, "participant_sid": None, "rejected_status": 403}
    admin.flush()
    assert receiver.events() == ["onParticipantAdd"]
    assert conversation.participants.list() == []
    assert admin.stats()["webhooks"]["rejected"] == 1


def test_an_unanswered_pre_event_lets_the_action_through(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onParticipantAdd")
    receiver.delays["onParticipantAdd"] = 1.5  # longer than the emulator's 1 s test timeout
    conversation = conversations.conversations.create()
    answer = sdk_add(admin, conversation.sid, identity="agent-7").json()
    assert answer["added"] is True
    assert admin.stats()["webhooks"] == {"sent": 0, "failed": 1, "rejected": 0}


def test_sdk_add_of_a_held_pair_gets_50416(conversations, admin):
    holder, other = conversations.conversations.create(), conversations.conversations.create()
    holder.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    answer = sdk_add(admin, other.sid, address=CUSTOMER, proxy_address=TWILIO_NUMBER)
    assert answer.status_code == 409
    assert answer.json()["code"] == 50416 and holder.sid in answer.json()["message"]
    assert admin.stats()["errors"]["50416"] == 1


# -- inbound SMS ----------------------------------------------------------------------------------


def test_inbound_autocreation_fires_its_events(conversations, configure_webhooks, receiver, admin):
    configure_webhooks(*ALL_PRE, *ALL_POST)
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER, "hello?")
    assert answer.status_code == 200
    created = answer.json()
    assert created["created"] is True
    admin.flush()
    assert receiver.events("/pre") == ["onConversationAdd"]
    assert receiver.events("/post") == [
        "onConversationAdded",
        "onParticipantAdded",
        "onMessageAdded",
    ]
    pre = receiver.wait_for(1, "/pre")[0].params
    assert pre["Source"] == "SMS" and pre["MessageBody"] == "hello?"
    assert pre["MessagingBinding.Address"] == CUSTOMER and "ConversationSid" not in pre
    posts = receiver.wait_for(3)
    assert all(h.params["Source"] == "SMS" and h.signature_valid for h in posts)
    assert posts[0].params["ConversationSid"] == created["conversation_sid"]
    assert posts[0].params["MessagingBinding.ProxyAddress"] == TWILIO_NUMBER
    assert posts[2].params["Body"] == "hello?"

    conversation = conversations.conversations(created["conversation_sid"]).fetch()
    assert conversation.state == "active"
    [participant] = conversation.participants.list()
    assert participant.messaging_binding["address"] == CUSTOMER


def test_a_rejected_autocreation_creates_nothing(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onConversationAdd", "onConversationAdded")
    receiver.answers["onConversationAdd"] = 403
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER)
    assert answer.status_code == 403
    assert answer.json()["created"] is False
    assert answer.json()["rejected_status"] == 403
    assert conversations.conversations.list() == []
    admin.flush()
    assert receiver.events("/post") == []


def test_inbound_to_a_holder_fires_message_add_and_reactivation(
    conversations, configure_webhooks, receiver, admin
):
    conversation = conversations.conversations.create(state="inactive")
    conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    configure_webhooks(*ALL_PRE, *ALL_POST)
    receiver.bodies["onMessageAdd"] = {"body": "edited by the pre-event"}
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER, "original")
    assert answer.json()["conversation_sid"] == conversation.sid
    admin.flush()
    assert receiver.events("/pre") == ["onMessageAdd"]
    assert receiver.events("/post") == ["onConversationStateUpdated", "onMessageAdded"]
    state, message = receiver.wait_for(2)
    assert (state.params["StateTo"], state.params["Reason"]) == ("active", "EVENT")
    assert message.params["Body"] == "edited by the pre-event"
    assert conversation.messages.list()[0].body == "edited by the pre-event"


def test_a_rejected_inbound_message_is_not_added(
    conversations, configure_webhooks, receiver, admin
):
    conversation = conversations.conversations.create()
    conversation.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    configure_webhooks("onMessageAdd")
    receiver.answers["onMessageAdd"] = 400
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER)
    assert answer.status_code == 403
    assert answer.json()["conversation_sid"] == conversation.sid
    assert conversation.messages.list() == []


def test_other_channels_and_group_mms_in_webhooks(
    conversations, configure_webhooks, receiver, admin
):
    configure_webhooks("onParticipantAdd", "onParticipantAdded")
    conversation = conversations.conversations.create()
    messenger = sdk_add(
        admin,
        conversation.sid,
        address="messenger:2738492049184756",
        proxy_address="messenger:104839201928374",
    )
    group = sdk_add(admin, conversation.sid, address=CUSTOMER)
    assert (messenger.status_code, group.status_code) == (201, 201)
    pre = receiver.wait_for(2, "/pre")
    post = receiver.wait_for(2, "/post")
    for hooks in (pre, post):
        assert hooks[0].params["MessagingBinding.Type"] == "MESSENGER"
        assert hooks[0].params["MessagingBinding.ProxyAddress"] == "messenger:104839201928374"
        assert hooks[1].params["MessagingBinding.Type"] == "SMS"
        assert hooks[1].params["MessagingBinding.Address"] == CUSTOMER
        assert "MessagingBinding.ProxyAddress" not in hooks[1].params


def test_the_idempotency_token_can_be_left_off(conversations, configure_webhooks, receiver, admin):
    configure_webhooks("onParticipantAdd", "onParticipantAdded")
    conversation = conversations.conversations.create()
    assert admin.faults(omit_idempotency_token=True)["omit_idempotency_token"] is True
    sdk_add(admin, conversation.sid, identity="agent-7")
    [pre] = receiver.wait_for(1, "/pre")
    [post] = receiver.wait_for(1, "/post")
    for hook in (pre, post):
        assert "I-Twilio-Idempotency-Token" not in hook.headers
        assert hook.signature_valid
    admin.faults()  # back to the baseline: the token again
    sdk_add(admin, conversation.sid, identity="agent-8")
    assert receiver.wait_for(2, "/post")[1].headers["I-Twilio-Idempotency-Token"]
    assert admin.post("faults", {"omit_idempotency_token": "yes"}).status_code == 400


def test_the_token_switch_as_a_baseline_survives_reset():
    with start_in_thread(EmulatorConfig(omit_idempotency_token=True, timer_tick=0)) as running:
        url = f"{running.url}/_emulator"
        assert requests.post(f"{url}/reset", timeout=5).ok
        assert requests.get(f"{url}/faults", timeout=5).json()["omit_idempotency_token"] is True
