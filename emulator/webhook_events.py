"""Conversations webhook events: who caused an action (its origin) and the parameters Twilio sends.

Parameters follow twilio.com/docs/conversations/conversations-webhooks: nested fields are dotted
(`MessagingBinding.Address`), `Attributes` is a JSON string, and a field with no value is left out
(a form cannot carry null).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from emulator.clock import iso
from emulator.records import Conversation, Message, Participant

PRE_EVENTS = frozenset(
    {
        "onConversationAdd",
        "onConversationUpdate",
        "onConversationRemove",
        "onParticipantAdd",
        "onParticipantUpdate",
        "onParticipantRemove",
        "onMessageAdd",
        "onMessageUpdate",
        "onMessageRemove",
    }
)

# Reasons of onConversationStateUpdated.
REASON_API = "API"
REASON_TIMER = "TIMER"
REASON_EVENT = "EVENT"


@dataclass(frozen=True)
class Origin:
    """Who caused an action, which decides the webhooks it fires.

    REST calls fire post-events only, and only with `X-Twilio-Webhook-Enabled: true`; SDK and SMS
    actions fire pre-events and then post-events; timers fire post-events.
    """

    source: str
    post_events: bool
    client_identity: str | None = None

    @classmethod
    def api(cls, webhook_enabled: bool) -> Origin:
        return cls("API", webhook_enabled)

    @classmethod
    def sdk(cls, client_identity: str) -> Origin:
        return cls("SDK", True, client_identity)

    @classmethod
    def sms(cls) -> Origin:
        return cls("SMS", True)

    @classmethod
    def timer(cls) -> Origin:
        """Timers are Twilio acting on its own. Their `Source` is undocumented: the emulator
        says `API`, so a receiver that ignores its own API echoes by Source is caught out."""
        return cls("API", True)


@dataclass(frozen=True)
class Event:
    """One webhook event, its form parameters already built (under the store lock)."""

    event_type: str
    service_sid: str
    conversation_sid: str | None
    params: dict[str, str]
    origin: Origin
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    """Sent as `I-Twilio-Idempotency-Token`; the same for every target of this event."""

    @property
    def is_pre(self) -> bool:
        return self.event_type in PRE_EVENTS


def _put(params: dict[str, str], name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, datetime):
        value = iso(value)
    params[name] = str(value)


def _common(account_sid: str, event_type: str, origin: Origin) -> dict[str, str]:
    params = {"AccountSid": account_sid, "EventType": event_type, "Source": origin.source}
    _put(params, "ClientIdentity", origin.client_identity)
    return params


def _binding(params: dict[str, str], participant: Participant) -> None:
    binding = participant.binding
    if binding is None:
        _put(params, "MessagingBinding.ProjectedAddress", participant.projected_address)
        return
    _put(params, "MessagingBinding.Type", binding.type.upper())
    _put(params, "MessagingBinding.Address", binding.address)
    _put(params, "MessagingBinding.ProxyAddress", binding.proxy_address)
    _put(params, "MessagingBinding.ProjectedAddress", binding.projected_address)


def conversation_event(
    account_sid: str,
    event_type: str,
    conversation: Conversation,
    origin: Origin,
    *,
    removed_at: datetime | None = None,
    binding_of: Participant | None = None,
    message_body: str | None = None,
) -> Event:
    """onConversationAdd(ed), onConversationUpdate(d), onConversationRemove(d)."""
    params = _common(account_sid, event_type, origin)
    if event_type != "onConversationAdd":
        _put(params, "ConversationSid", conversation.sid)
    _put(params, "ChatServiceSid", conversation.service_sid)
    _put(params, "MessagingServiceSid", conversation.messaging_service_sid)
    _put(params, "FriendlyName", conversation.friendly_name)
    _put(params, "UniqueName", conversation.unique_name)
    _put(params, "Attributes", conversation.attributes)
    _put(params, "State", conversation.state)
    _put(params, "DateCreated", conversation.date_created)
    _put(params, "DateUpdated", conversation.date_updated)
    _put(params, "DateRemoved", removed_at)
    _put(params, "MessageBody", message_body)
    if binding_of is not None:
        _binding(params, binding_of)
    return Event(event_type, conversation.service_sid, conversation.sid, params, origin)


def state_updated(
    account_sid: str,
    conversation: Conversation,
    state_from: str,
    reason: str,
    origin: Origin,
) -> Event:
    """onConversationStateUpdated, after the conversation moved to its current state."""
    params = _common(account_sid, "onConversationStateUpdated", origin)
    _put(params, "ConversationSid", conversation.sid)
    _put(params, "ChatServiceSid", conversation.service_sid)
    _put(params, "MessagingServiceSid", conversation.messaging_service_sid)
    _put(params, "StateFrom", state_from)
    _put(params, "StateTo", conversation.state)
    _put(params, "StateUpdated", conversation.date_state_changed or conversation.date_updated)
    _put(params, "Reason", reason)
    return Event(
        "onConversationStateUpdated", conversation.service_sid, conversation.sid, params, origin
    )


def participant_event(
    account_sid: str,
    event_type: str,
    conversation: Conversation,
    participant: Participant,
    origin: Origin,
    *,
    removed_at: datetime | None = None,
) -> Event:
    """onParticipantAdd(ed), onParticipantUpdate(d), onParticipantRemove(d).

    For the pre-event onParticipantAdd, `participant` is the one about to be added: it has no
    SID and no dates yet, and none are sent.
    """
    params = _common(account_sid, event_type, origin)
    _put(params, "ConversationSid", conversation.sid)
    _put(params, "ChatServiceSid", conversation.service_sid)
    _put(params, "Identity", participant.identity)
    _put(params, "RoleSid", participant.role_sid)
    _put(params, "Attributes", participant.attributes)
    _binding(params, participant)
    if event_type != "onParticipantAdd":
        _put(params, "ParticipantSid", participant.sid or None)
        _put(params, "DateCreated", participant.date_created)
    if event_type in ("onParticipantUpdated", "onParticipantRemoved", "onParticipantUpdate"):
        _put(params, "DateUpdated", participant.date_updated)
    _put(params, "DateRemoved", removed_at)
    return Event(event_type, conversation.service_sid, conversation.sid, params, origin)


def message_event(
    account_sid: str,
    event_type: str,
    conversation: Conversation,
    message: Message,
    origin: Origin,
) -> Event:
    """onMessageAdd (before the message exists) and onMessageAdded."""
    params = _common(account_sid, event_type, origin)
    _put(params, "ConversationSid", conversation.sid)
    _put(params, "ChatServiceSid", conversation.service_sid)
    _put(params, "Body", message.body)
    _put(params, "Author", message.author)
    _put(params, "ParticipantSid", message.participant_sid)
    _put(params, "Attributes", message.attributes)
    if event_type != "onMessageAdd":
        _put(params, "MessageSid", message.sid)
        _put(params, "Index", message.index)
        _put(params, "DateCreated", message.date_created)
    return Event(event_type, conversation.service_sid, conversation.sid, params, origin)
