"""Twilio's Conversations webhooks as typed events.

`parse(form)` turns a webhook's parameters into one of the event classes below, or raises
`BadEvent` naming the field at fault. Each post-event knows the job that applies it (`job()`) and the
identity Twilio gives it (`delivery_key()`), from which a redelivery is recognised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from workers.addresses import channel, is_sid, is_valid_address

STATES = ("active", "inactive", "closed")
MAX_FIELD = 256


class BadEvent(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnhandledEvent(Exception):
    """An EventType Bindery does not act on."""


def _text(
    form: Mapping[str, str], name: str, required: bool = False, limit: int = MAX_FIELD
) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise BadEvent(name, "must be a string")
    if required and not value:
        raise BadEvent(name, "is required")
    if len(value) > limit:
        raise BadEvent(name, f"is longer than {limit} characters")
    return value


def _sid(form: Mapping[str, str], name: str, prefix: str, required: bool = True) -> str:
    value = _text(form, name, required=required)
    if value and not is_sid(value, prefix):
        raise BadEvent(name, f"is not a {prefix} SID")
    return value


def _time(form: Mapping[str, str], *names: str, default: float) -> float:
    """The first of `names` present, as epoch seconds (ISO 8601, as Twilio sends dates)."""
    for name in names:
        value = _text(form, name)
        if value:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise BadEvent(name, "is not an ISO 8601 date") from None
            if parsed.tzinfo is None:
                raise BadEvent(name, "has no time zone")
            return parsed.timestamp()
    return default


def _binding(form: Mapping[str, str], required: bool) -> tuple[str, str]:
    address = _text(form, "MessagingBinding.Address")
    proxy = _text(form, "MessagingBinding.ProxyAddress")
    if not address and not proxy and not required:
        return "", ""
    if not address:
        raise BadEvent("MessagingBinding.Address", "is required with a ProxyAddress")
    if not is_valid_address(address):
        raise BadEvent("MessagingBinding.Address", "is not an E.164 or whatsapp: address")
    if not proxy:
        raise BadEvent("MessagingBinding.ProxyAddress", "is required with an Address")
    if not is_valid_address(proxy):
        raise BadEvent("MessagingBinding.ProxyAddress", "is not an E.164 or whatsapp: address")
    if channel(address) != channel(proxy):
        raise BadEvent("MessagingBinding.ProxyAddress", "is of another channel than Address")
    if address == proxy:
        raise BadEvent("MessagingBinding.ProxyAddress", "equals Address")
    return address, proxy


def _participant(form: Mapping[str, str]) -> tuple[str, str, str]:
    identity = _text(form, "Identity")
    address, proxy = _binding(form, required=not identity)
    return identity, address, proxy


@dataclass(frozen=True)
class Event:
    event_type: str
    conversation_sid: str

    job_function = ""

    def delivery_key(self) -> str:
        """What makes this event this event, for recognising a redelivery."""
        return "|".join(str(v) for v in asdict(self).values())

    def job(self) -> tuple[str, dict]:
        kwargs = asdict(self)
        kwargs.pop("event_type")
        return self.job_function, kwargs


@dataclass(frozen=True)
class ConversationAdded(Event):
    state: str
    at: float
    address: str
    proxy_address: str

    job_function = "workers.jobs.record_conversation_added"


@dataclass(frozen=True)
class ParticipantChanged(Event):
    change: str  # added | removed
    at: float
    participant_sid: str
    identity: str
    address: str
    proxy_address: str

    job_function = "workers.jobs.record_participant"


@dataclass(frozen=True)
class StateUpdated(Event):
    state: str
    at: float

    job_function = "workers.jobs.record_state"


@dataclass(frozen=True)
class ConversationRemoved(Event):
    at: float

    job_function = "workers.jobs.record_conversation_removed"


@dataclass(frozen=True)
class MessageAdded(Event):
    at: float
    message_sid: str

    job_function = "workers.jobs.record_message"

    def job(self) -> tuple[str, dict]:
        return self.job_function, {"conversation_sid": self.conversation_sid, "at": self.at}


@dataclass(frozen=True)
class ParticipantAdd(Event):
    """The pre-event: somebody is about to add a participant; Bindery may refuse."""

    identity: str
    address: str
    proxy_address: str


def _common(form: Mapping[str, str]) -> str:
    _sid(form, "AccountSid", "AC")
    return _text(form, "EventType", required=True)


def parse_post(form: Mapping[str, str], received_at: float) -> Event:
    event_type = _common(form)
    if event_type not in POST_EVENTS:
        raise UnhandledEvent(event_type)
    conversation = _sid(form, "ConversationSid", "CH")
    if event_type == "onConversationAdded":
        state = _text(form, "State") or "active"
        if state not in STATES:
            raise BadEvent("State", "must be active, inactive or closed")
        address, proxy = _binding(form, required=False)
        at = _time(form, "DateCreated", default=received_at)
        return ConversationAdded(event_type, conversation, state, at, address, proxy)
    if event_type in ("onParticipantAdded", "onParticipantRemoved"):
        participant = _sid(form, "ParticipantSid", "MB")
        identity, address, proxy = _participant(form)
        if event_type == "onParticipantAdded":
            at = _time(form, "DateCreated", default=received_at)
            change = "added"
        else:
            at = _time(form, "DateRemoved", "DateUpdated", default=received_at)
            change = "removed"
        return ParticipantChanged(
            event_type, conversation, change, at, participant, identity, address, proxy
        )
    if event_type == "onConversationStateUpdated":
        state = _text(form, "StateTo", required=True)
        if state not in STATES:
            raise BadEvent("StateTo", "must be active, inactive or closed")
        at = _time(form, "StateUpdated", "DateUpdated", default=received_at)
        return StateUpdated(event_type, conversation, state, at)
    if event_type == "onConversationRemoved":
        at = _time(form, "DateRemoved", "DateUpdated", default=received_at)
        return ConversationRemoved(event_type, conversation, at)
    # onMessageAdded
    message = _sid(form, "MessageSid", "IM", required=False)
    at = _time(form, "DateCreated", default=received_at)
    return MessageAdded(event_type, conversation, at, message)


def parse_pre(form: Mapping[str, str]) -> Event | None:
    """The pre-event Bindery decides on (`onParticipantAdd`), or None for any other."""
    event_type = _common(form)
    if event_type != "onParticipantAdd":
        return None
    conversation = _sid(form, "ConversationSid", "CH")
    identity, address, proxy = _participant(form)
    return ParticipantAdd(event_type, conversation, identity, address, proxy)


POST_EVENTS = (
    "onConversationAdded",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
    "onConversationRemoved",
    "onMessageAdded",
)
