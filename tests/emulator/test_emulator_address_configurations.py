"""Address Configurations (/v1/Configuration/Addresses) through the official client, and the
inbound autocreation they steer."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

CUSTOMER = "+15551230001"
TWILIO_NUMBER = "+15550001111"
BASE = "https://conversations.twilio.com/v1/Configuration/Addresses"


def error_of(call, *args, **kwargs) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as caught:
        call(*args, **kwargs)
    return caught.value


def test_create_list_fetch_update_delete(conversations):
    service = conversations.services.create(friendly_name="support")
    created = conversations.address_configurations.create(
        type="sms",
        address=TWILIO_NUMBER,
        friendly_name="support line",
        auto_creation_enabled=True,
        auto_creation_type="webhook",
        auto_creation_conversation_service_sid=service.sid,
        auto_creation_webhook_url="https://example.com/hook",
        auto_creation_webhook_method="post",
        auto_creation_webhook_filters=["onMessageAdded", "onParticipantAdded"],
        address_country="US",
    )
    assert created.sid.startswith("IG") and len(created.sid) == 34
    assert (created.type, created.address, created.friendly_name) == (
        "sms",
        TWILIO_NUMBER,
        "support line",
    )
    assert created.auto_creation == {
        "enabled": True,
        "type": "webhook",
        "conversation_service_sid": service.sid,
        "webhook_url": "https://example.com/hook",
        "webhook_method": "POST",
        "webhook_filters": ["onMessageAdded", "onParticipantAdded"],
    }
    assert created.url == f"{BASE}/{created.sid}" and created.address_country == "US"
    whatsapp = conversations.address_configurations.create(
        type="WhatsApp", address="+15550002222", auto_creation_enabled=False
    )
    assert whatsapp.type == "whatsapp"
    assert whatsapp.auto_creation == {"enabled": False, "type": "default"}

    assert [a.sid for a in conversations.address_configurations.list()] == [
        created.sid,
        whatsapp.sid,
    ]
    assert [a.sid for a in conversations.address_configurations.list(type="whatsapp")] == [
        whatsapp.sid
    ]
    # Fetched by SID or by address.
    assert conversations.address_configurations(created.sid).fetch().address == TWILIO_NUMBER
    assert conversations.address_configurations(TWILIO_NUMBER).fetch().sid == created.sid

    updated = conversations.address_configurations(created.sid).update(
        friendly_name="renamed", auto_creation_type="default", auto_creation_enabled=False
    )
    assert updated.friendly_name == "renamed"
    assert updated.auto_creation == {
        "enabled": False,
        "type": "default",
        "conversation_service_sid": service.sid,
    }
    assert conversations.address_configurations(created.sid).delete() is True
    assert error_of(conversations.address_configurations(created.sid).fetch).status == 404


def test_bad_configurations_are_refused(conversations, raw, emulator):
    url = f"{emulator.url}/v1/Configuration/Addresses"
    for data, fragment in (
        ({"Address": TWILIO_NUMBER}, "Type"),
        ({"Type": "fax", "Address": TWILIO_NUMBER}, "Type"),
        ({"Type": "sms"}, "Address"),
        ({"Type": "sms", "Address": TWILIO_NUMBER, "AutoCreation.Type": "robot"}, "AutoCreation"),
        ({"Type": "sms", "Address": TWILIO_NUMBER, "AutoCreation.Enabled": "yes"}, "Enabled"),
        ({"Type": "sms", "Address": TWILIO_NUMBER, "AutoCreation.WebhookMethod": "put"}, "Method"),
    ):
        answer = raw.post(url, data=data)
        assert answer.status_code == 400, data
        assert fragment in answer.json()["message"], answer.json()
    unknown = raw.post(
        url,
        data={
            "Type": "sms",
            "Address": TWILIO_NUMBER,
            "AutoCreation.ConversationServiceSid": "IS" + "0" * 32,
        },
    )
    assert unknown.status_code == 404
    assert raw.post(url, data={"Type": "sms", "Address": TWILIO_NUMBER}).status_code == 201
    again = raw.post(url, data={"Type": "sms", "Address": TWILIO_NUMBER})
    assert again.status_code == 400 and "already configured" in again.json()["message"]
    assert raw.get(url, params={"PageSize": 51}).status_code == 400


def test_inbound_autocreates_in_the_configured_service(conversations, admin):
    service = conversations.services.create(friendly_name="sales")
    configuration = conversations.address_configurations.create(
        type="sms",
        address=TWILIO_NUMBER,
        auto_creation_enabled=True,
        auto_creation_type="default",
        auto_creation_conversation_service_sid=service.sid,
    )
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER, "hello").json()
    assert answer["created"] is True
    assert answer["chat_service_sid"] == service.sid
    assert answer["address_configuration_sid"] == configuration.sid
    scoped = conversations.services(service.sid)
    conversation = scoped.conversations(answer["conversation_sid"]).fetch()
    assert conversation.chat_service_sid == service.sid
    [participant] = scoped.conversations(conversation.sid).participants.list()
    assert participant.messaging_binding["proxy_address"] == TWILIO_NUMBER
    assert conversations.conversations.list() == []  # nothing in the default service
    # The next message from the pair goes to the holder.
    again = admin.inbound(CUSTOMER, TWILIO_NUMBER, "still there?").json()
    assert (again["conversation_sid"], again["created"]) == (conversation.sid, False)


def test_a_configuration_without_a_service_uses_the_default_one(conversations, admin, emulator):
    conversations.address_configurations.create(
        type="whatsapp", address=TWILIO_NUMBER, auto_creation_enabled=True
    )
    answer = admin.inbound(f"whatsapp:{CUSTOMER}", f"whatsapp:{TWILIO_NUMBER}").json()
    assert answer["created"] is True and answer["address_configuration_sid"].startswith("IG")
    assert answer["chat_service_sid"] == emulator.default_service_sid
    # A number with no configuration autocreates in the default service, as before.
    other = admin.inbound(CUSTOMER, "+15550002222").json()
    assert (other["chat_service_sid"], other["address_configuration_sid"]) == (
        emulator.default_service_sid,
        None,
    )


def test_autocreation_off_creates_nothing(conversations, configure_webhooks, receiver, admin):
    configure_webhooks("onConversationAdd", "onConversationAdded", "onMessageAdded")
    configuration = conversations.address_configurations.create(
        type="sms", address=TWILIO_NUMBER, auto_creation_enabled=False
    )
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER, "anyone?")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["conversation_sid"], body["created"], body["message_sid"]) == (None, False, None)
    assert configuration.sid in body["message"] and "autocreation is off" in body["message"]
    assert conversations.conversations.list() == []
    admin.flush()
    assert receiver.hooks == []
    # A conversation that holds the pair still gets the message.
    holder = conversations.conversations.create()
    holder.participants.create(
        messaging_binding_address=CUSTOMER, messaging_binding_proxy_address=TWILIO_NUMBER
    )
    routed = admin.inbound(CUSTOMER, TWILIO_NUMBER, "now?").json()
    assert (routed["conversation_sid"], routed["created"]) == (holder.sid, False)


def test_the_pre_event_goes_to_the_configured_service(
    conversations, configure_webhooks, receiver, admin, emulator
):
    service = conversations.services.create(friendly_name="sales")
    conversations.services(service.sid).configuration.webhooks().update(
        pre_webhook_url=receiver.url + "/sales-pre", filters=["onConversationAdd"]
    )
    configure_webhooks("onConversationAdd")  # the default service's: must not be called
    conversations.address_configurations.create(
        type="sms",
        address=TWILIO_NUMBER,
        auto_creation_enabled=True,
        auto_creation_conversation_service_sid=service.sid,
    )
    receiver.answers["onConversationAdd"] = 403
    answer = admin.inbound(CUSTOMER, TWILIO_NUMBER)
    assert answer.status_code == 403
    [hook] = receiver.wait_for(1, "/sales-pre")
    assert hook.params["ChatServiceSid"] == service.sid
    assert receiver.events("/pre") == []
