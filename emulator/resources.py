"""JSON of each resource, in the shapes of Twilio's OpenAPI description (`twilio_conversations_v1`,
whose facts are kept in `emulator/contract/conversations_v1.json`): every field Twilio has, in its
order, and no other.

A `Scope` says how the request reached a resource: the default-service form
(`https://conversations.twilio.com/v1/...`) or the service-scoped form
(`.../v1/Services/IS.../...`). It decides the URLs, and whether participants and messages carry
`chat_service_sid` (only the service-scoped form has it, in Twilio's description).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.clock import iso
from emulator.defaults import PUBLIC_BASE_URL
from emulator.records import (
    AddressConfiguration,
    Conversation,
    Message,
    Participant,
    Service,
    WebhookConfig,
)

Json = dict[str, Any]

ROOT = f"{PUBLIC_BASE_URL}/v1"


@dataclass(frozen=True)
class Scope:
    service_sid: str | None
    """The service the path named, or None for the default-service form."""

    @property
    def base(self) -> str:
        """The absolute base the resource is addressed under."""
        return f"{ROOT}/Services/{self.service_sid}" if self.service_sid else ROOT

    @property
    def scoped(self) -> bool:
        return self.service_sid is not None


def service(account_sid: str, s: Service) -> Json:
    url = f"{ROOT}/Services/{s.sid}"
    return {
        "sid": s.sid,
        "account_sid": account_sid,
        "friendly_name": s.friendly_name,
        "date_created": iso(s.date_created),
        "date_updated": iso(s.date_updated),
        "url": url,
        "links": {
            name: f"{url}/{path}"
            for name, path in (
                ("conversations", "Conversations"),
                ("users", "Users"),
                ("roles", "Roles"),
                ("bindings", "Bindings"),
                ("configuration", "Configuration"),
                ("participant_conversations", "ParticipantConversations"),
                ("conversation_with_participants", "ConversationWithParticipants"),
            )
        },
    }


def timers(c: Conversation) -> Json:
    """`{"date_inactive": ..., "date_closed": ...}` with the pending ones, or `{}`."""
    found = {}
    if c.date_inactive:
        found["date_inactive"] = iso(c.date_inactive)
    if c.date_closed:
        found["date_closed"] = iso(c.date_closed)
    return found


def conversation(account_sid: str, c: Conversation, scope: Scope) -> Json:
    url = f"{scope.base}/Conversations/{c.sid}"
    return {
        "sid": c.sid,
        "account_sid": account_sid,
        "chat_service_sid": c.service_sid,
        "messaging_service_sid": c.messaging_service_sid,
        "friendly_name": c.friendly_name,
        "unique_name": c.unique_name,
        "attributes": c.attributes,
        "date_created": iso(c.date_created),
        "date_updated": iso(c.date_updated),
        "state": c.state,
        "timers": timers(c),
        "bindings": {},
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "messages": f"{url}/Messages",
            "webhooks": f"{url}/Webhooks",
            "export": f"{url}/Export",
        },
    }


def messaging_binding(p: Participant) -> Json | None:
    if p.binding is not None:
        binding: Json = {"type": p.binding.type, "address": p.binding.address}
        if p.binding.proxy_address:
            binding["proxy_address"] = p.binding.proxy_address
        if p.binding.projected_address:
            binding["projected_address"] = p.binding.projected_address
        return binding
    if p.projected_address:
        return {"type": "sms", "projected_address": p.projected_address}
    return None


def participant(account_sid: str, p: Participant, scope: Scope) -> Json:
    return {
        "account_sid": account_sid,
        **_chat_service(p.service_sid, scope),
        "conversation_sid": p.conversation_sid,
        "sid": p.sid,
        "identity": p.identity,
        "attributes": p.attributes,
        "messaging_binding": messaging_binding(p),
        "role_sid": p.role_sid,
        "date_created": iso(p.date_created),
        "date_updated": iso(p.date_updated),
        "url": f"{scope.base}/Conversations/{p.conversation_sid}/Participants/{p.sid}",
        "last_read_message_index": p.last_read_message_index,
        "last_read_timestamp": p.last_read_timestamp,
    }


def message(account_sid: str, m: Message, scope: Scope) -> Json:
    url = f"{scope.base}/Conversations/{m.conversation_sid}/Messages/{m.sid}"
    return {
        "sid": m.sid,
        "account_sid": account_sid,
        **_chat_service(m.service_sid, scope),
        "conversation_sid": m.conversation_sid,
        "body": m.body,
        "media": None,
        "author": m.author,
        "participant_sid": m.participant_sid,
        "attributes": m.attributes,
        "date_created": iso(m.date_created),
        "date_updated": iso(m.date_updated),
        "index": m.index,
        "delivery": None,
        "content_sid": None,
        "url": url,
        "links": {
            "delivery_receipts": f"{url}/Receipts",
            "channel_metadata": f"{url}/ChannelMetadata",
        },
    }


def _chat_service(service_sid: str, scope: Scope) -> Json:
    return {"chat_service_sid": service_sid} if scope.scoped else {}


def participant_conversation(
    account_sid: str, p: Participant, c: Conversation, scope: Scope
) -> Json:
    binding = None
    if p.binding is not None:
        binding = {
            "address": p.binding.address,
            "proxy_address": p.binding.proxy_address,
            "type": p.binding.type,
            "level": None,
            "name": None,
            "projected_address": p.binding.projected_address,
        }
    conversation_url = f"{scope.base}/Conversations/{c.sid}"
    return {
        "account_sid": account_sid,
        "chat_service_sid": c.service_sid,
        "participant_sid": p.sid,
        "participant_user_sid": p.user_sid,
        "participant_identity": p.identity,
        "participant_messaging_binding": binding,
        "conversation_sid": c.sid,
        "conversation_unique_name": c.unique_name,
        "conversation_friendly_name": c.friendly_name,
        "conversation_attributes": c.attributes,
        "conversation_date_created": iso(c.date_created),
        "conversation_date_updated": iso(c.date_updated),
        "conversation_created_by": c.created_by,
        "conversation_state": c.state,
        "conversation_timers": timers(c),
        "links": {
            "participant": f"{conversation_url}/Participants/{p.sid}",
            "conversation": conversation_url,
        },
    }


def service_webhook_configuration(account_sid: str, service_sid: str, w: WebhookConfig) -> Json:
    return {
        "account_sid": account_sid,
        "chat_service_sid": service_sid,
        "pre_webhook_url": w.pre_webhook_url,
        "post_webhook_url": w.post_webhook_url,
        "filters": list(w.filters),
        "method": w.method,
        "url": f"{ROOT}/Services/{service_sid}/Configuration/Webhooks",
    }


def account_webhook_configuration(account_sid: str, w: WebhookConfig) -> Json:
    return {
        "account_sid": account_sid,
        "pre_webhook_url": w.pre_webhook_url,
        "post_webhook_url": w.post_webhook_url,
        "method": w.method,
        "filters": list(w.filters),
        "target": w.target,
        "url": f"{ROOT}/Configuration/Webhooks",
    }


def address_configuration(account_sid: str, a: AddressConfiguration) -> Json:
    return {
        "sid": a.sid,
        "account_sid": account_sid,
        "type": a.type,
        "address": a.address,
        "friendly_name": a.friendly_name,
        "auto_creation": auto_creation(a),
        "date_created": iso(a.date_created),
        "date_updated": iso(a.date_updated),
        "url": f"{ROOT}/Configuration/Addresses/{a.sid}",
        "address_country": a.address_country,
    }


def auto_creation(a: AddressConfiguration) -> Json:
    """`enabled` and `type`, then the fields of that type that are set (as Twilio's examples)."""
    settings = a.auto_creation
    found: Json = {"enabled": settings.enabled, "type": settings.type}
    if settings.conversation_service_sid:
        found["conversation_service_sid"] = settings.conversation_service_sid
    if settings.type == "webhook":
        found["webhook_url"] = settings.webhook_url
        found["webhook_method"] = settings.webhook_method
        found["webhook_filters"] = list(settings.webhook_filters)
    elif settings.type == "studio":
        found["studio_flow_sid"] = settings.studio_flow_sid
        found["studio_retry_count"] = settings.studio_retry_count
    return found


def page(key: str, items: list[Json], meta: Json) -> Json:
    return {key: items, "meta": meta}
