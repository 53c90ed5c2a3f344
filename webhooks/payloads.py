"""Twilio's Conversations webhooks as typed events, named after Twilio's own.

`parse_post(form)` turns a post-event's parameters into one of the event classes below, or raises
`BadEvent` naming the field at fault. Each post-event knows its job (`job()`: the name in
`workers/job_catalog.py` and the arguments) and its own identity (`delivery_key()`), from which a
redelivery is recognised. `parse_pre(form)` does the same for the pre-events Bindery answers.

What is checked is structure (SIDs, dates, lengths), not the shape of an address: Twilio has
validated what it sends, for channels Bindery need not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from workers import job_catalog
from workers.addresses import MAX_ADDRESS, address_problem, is_sid
from workers.states import STATES

MAX_FIELD = 256
MAX_MESSAGE_BODY = 32 * 1024
"""Characters of an inbound message body a pre-event may carry (a Conversations message: 32 KiB)."""


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


def _binding(form: Mapping[str, str]) -> tuple[str, str]:
    """(address, proxy address) as Twilio sent them; a group-MMS participant has no proxy."""
    found = []
    for name in ("MessagingBinding.Address", "MessagingBinding.ProxyAddress"):
        value = _text(form, name, limit=MAX_ADDRESS)
        problem = value and address_problem(value, from_twilio=True)
        if problem:
            raise BadEvent(name, problem)
        found.append(value)
    address, proxy = found
    if proxy and not address:
        raise BadEvent("MessagingBinding.Address", "is required with a ProxyAddress")
    return address, proxy


def _participant(form: Mapping[str, str]) -> tuple[str, str, str]:
    identity = _text(form, "Identity")
    address, proxy = _binding(form)
    if not identity and not address:
        raise BadEvent("MessagingBinding.Address", "is required (or an Identity)")
    return identity, address, proxy


def _service(form: Mapping[str, str]) -> str:
    return _sid(form, "ChatServiceSid", "IS", required=False)


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
    service_sid: str

    job_function = job_catalog.ON_CONVERSATION_ADDED


@dataclass(frozen=True)
class ParticipantAdded(Event):
    at: float
    participant_sid: str
    identity: str
    address: str
    proxy_address: str
    service_sid: str

    job_function = job_catalog.ON_PARTICIPANT_ADDED


@dataclass(frozen=True)
class ParticipantRemoved(ParticipantAdded):
    job_function = job_catalog.ON_PARTICIPANT_REMOVED


@dataclass(frozen=True)
class ConversationStateUpdated(Event):
    state: str
    at: float
    service_sid: str

    job_function = job_catalog.ON_CONVERSATION_STATE_UPDATED


@dataclass(frozen=True)
class ConversationRemoved(Event):
    at: float

    job_function = job_catalog.ON_CONVERSATION_REMOVED


@dataclass(frozen=True)
class MessageAdded(Event):
    at: float
    message_sid: str

    job_function = job_catalog.ON_MESSAGE_ADDED

    def job(self) -> tuple[str, dict]:
        return self.job_function, {"conversation_sid": self.conversation_sid, "at": self.at}


@dataclass(frozen=True)
class ParticipantAdd(Event):
    """The pre-event: somebody is about to add a participant; Bindery may refuse."""

    identity: str
    address: str
    proxy_address: str


@dataclass(frozen=True)
class ConversationAdd(Event):
    """The pre-event of a conversation about to be created; with a binding, an inbound message is
    about to autocreate one holding that pair."""

    address: str
    proxy_address: str
    message_body: str = ""
    """The inbound message's body (`MessageBody`), for an out-of-session message."""


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
        address, proxy = _binding(form)
        at = _time(form, "DateCreated", default=received_at)
        return ConversationAdded(
            event_type, conversation, state, at, address, proxy, _service(form)
        )
    if event_type in ("onParticipantAdded", "onParticipantRemoved"):
        participant = _sid(form, "ParticipantSid", "MB")
        identity, address, proxy = _participant(form)
        if event_type == "onParticipantAdded":
            at = _time(form, "DateCreated", default=received_at)
            kind = ParticipantAdded
        else:
            at = _time(form, "DateRemoved", "DateUpdated", default=received_at)
            kind = ParticipantRemoved
        return kind(
            event_type, conversation, at, participant, identity, address, proxy, _service(form)
        )
    if event_type == "onConversationStateUpdated":
        state = _text(form, "StateTo", required=True)
        if state not in STATES:
            raise BadEvent("StateTo", "must be active, inactive or closed")
        at = _time(form, "StateUpdated", "DateUpdated", default=received_at)
        return ConversationStateUpdated(event_type, conversation, state, at, _service(form))
    if event_type == "onConversationRemoved":
        at = _time(form, "DateRemoved", "DateUpdated", default=received_at)
        return ConversationRemoved(event_type, conversation, at)
    # onMessageAdded
    message = _sid(form, "MessageSid", "IM", required=False)
    at = _time(form, "DateCreated", default=received_at)
    return MessageAdded(event_type, conversation, at, message)


def parse_pre(form: Mapping[str, str]) -> Event | None:
    """The pre-event Bindery decides on (`onParticipantAdd`, `onConversationAdd`), or None."""
    event_type = _common(form)
    if event_type == "onConversationAdd":
        address, proxy = _binding(form)
        body = _text(form, "MessageBody", limit=MAX_MESSAGE_BODY)
        return ConversationAdd(event_type, "", address, proxy, body)
    if event_type != "onParticipantAdd":
        return None
    conversation = _sid(form, "ConversationSid", "CH")
    identity = _text(form, "Identity")
    address, proxy = _binding(form)
    return ParticipantAdd(event_type, conversation, identity, address, proxy)


POST_EVENTS = (
    "onConversationAdded",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
    "onConversationRemoved",
    "onMessageAdded",
)
