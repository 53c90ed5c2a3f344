"""The emulator's records: what a service, a conversation, a participant and a message hold.

Plain dataclasses with no rules: the modules that own each concept change them, with the store's
lock held, and hand out copies.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from emulator.channels import Binding

ACTIVE, INACTIVE, CLOSED = "active", "inactive", "closed"
STATES = (ACTIVE, INACTIVE, CLOSED)


class Unset:
    """Marks a parameter the request did not carry (None means "given, empty")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


@dataclass
class WebhookConfig:
    """A service's or the account's webhook configuration. No filters: nothing is sent."""

    pre_webhook_url: str | None = None
    post_webhook_url: str | None = None
    filters: tuple[str, ...] = ()
    method: str = "POST"
    target: str = "webhook"


@dataclass
class Service:
    sid: str
    seq: int
    friendly_name: str | None
    date_created: datetime
    date_updated: datetime
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)


@dataclass
class Participant:
    sid: str
    conversation_sid: str
    service_sid: str
    seq: int
    identity: str | None
    attributes: str
    role_sid: str | None
    binding: Binding | None
    projected_address: str | None
    """A chat participant's projected address (an SMS participant's is on its binding)."""
    user_sid: str | None
    date_created: datetime | None
    date_updated: datetime | None
    last_read_message_index: int | None = None
    last_read_timestamp: str | None = None


@dataclass(frozen=True)
class Message:
    sid: str
    conversation_sid: str
    service_sid: str
    seq: int
    index: int
    author: str
    body: str | None
    attributes: str
    participant_sid: str | None
    date_created: datetime
    date_updated: datetime


@dataclass
class Conversation:
    sid: str
    service_sid: str
    seq: int
    friendly_name: str | None
    unique_name: str | None
    attributes: str
    messaging_service_sid: str | None
    state: str
    date_created: datetime
    date_updated: datetime
    created_by: str | None
    timer_inactive: timedelta | None = None
    timer_closed: timedelta | None = None
    date_inactive: datetime | None = None
    date_closed: datetime | None = None
    date_state_changed: datetime | None = None
    """When the state last moved (StateUpdated), whether or not that bumped date_updated."""
    participants: dict[str, Participant] = field(default_factory=dict, repr=False)
    messages: list[Message] = field(default_factory=list, repr=False)
    next_index: int = 0

    def snapshot(self) -> Conversation:
        return replace(self, participants={}, messages=[])


@dataclass
class AutoCreation:
    """What an inbound message to a configured address creates when no conversation holds its
    pair: a conversation in `conversation_service_sid` (the default service when None)."""

    enabled: bool = False
    type: str = "default"
    """`default`, `webhook` (with a conversation-scoped webhook) or `studio` (to a Studio flow)."""
    conversation_service_sid: str | None = None
    webhook_url: str | None = None
    webhook_method: str | None = None
    webhook_filters: tuple[str, ...] = ()
    studio_flow_sid: str | None = None
    studio_retry_count: int | None = None


@dataclass
class AddressConfiguration:
    """An Address Configuration (IG...): how Conversations treats messages to one address."""

    sid: str
    seq: int
    type: str
    address: str
    friendly_name: str | None
    address_country: str | None
    auto_creation: AutoCreation
    date_created: datetime
    date_updated: datetime
