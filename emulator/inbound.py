"""Inbound messages from customers: routed to the conversation holding their pair, or a
conversation autocreated for them; the pre-event first.

Where an autocreated conversation lands: the service of the Address Configuration of the number
the message was sent to (`address_configurations.py`), the default service when that names none
or when the number has no configuration. A configuration with autocreation off creates nothing:
the message reaches no conversation.

The pre-event (onMessageAdd to a holder, onConversationAdd before an autocreation) is sent and
answered with the store's lock released: a receiver may take seconds. The message is then routed
again under the lock, since the holder (or the configuration) may have changed meanwhile.
Autocreation fires onConversationAdded, onParticipantAdded and onMessageAdded (no
onParticipantAdd or onMessageAdd), as Twilio does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator import channels, webhook_events
from emulator.address_configurations import AddressConfigurations
from emulator.binding_index import BindingIndex
from emulator.clock import TimeSource
from emulator.conversations import Conversations
from emulator.messages import Messages
from emulator.participants import Participants, ParticipantSpec
from emulator.records import AddressConfiguration, Conversation, Message
from emulator.states import States
from emulator.webhook_events import Event, Origin
from emulator.webhooks import PreOutcome

PreEvent = Callable[[Event], PreOutcome]
"""Sends a pre-event and says what its receivers answered."""


def no_pre_event(_: Event) -> PreOutcome:
    """Nobody to ask: every action proceeds unchanged."""
    return PreOutcome()


@dataclass(frozen=True)
class InboundOutcome:
    conversation_sid: str | None
    created: bool
    message_sid: str | None = None
    service_sid: str | None = None
    """The service of the conversation the message went to."""
    address_configuration_sid: str | None = None
    """The configuration of the number the message was sent to, when it has one."""
    rejected_status: int | None = None
    rejected_by: str | None = None
    """The pre-event that rejected the message, when one did."""
    not_routed: str | None = None
    """Why no conversation took the message, when none did (autocreation off)."""


@dataclass(frozen=True)
class _Route:
    """Where a message goes: the holder, a new conversation in `service_sid`, or nowhere."""

    holder: Conversation | None
    service_sid: str | None
    configuration: AddressConfiguration | None


class Inbound:
    """Receives inbound messages into the store's conversations (see the module's docstring)."""

    def __init__(
        self,
        *,
        lock: threading.RLock,
        clock: TimeSource,
        account_sid: str,
        default_service_sid: str,
        conversations: Conversations,
        participants: Participants,
        messages: Messages,
        index: BindingIndex,
        states: States,
        addresses: AddressConfigurations,
        emit: Callable[[Event], None],
    ) -> None:
        self._lock = lock
        self._clock = clock
        self._account_sid = account_sid
        self._default_service_sid = default_service_sid
        self._conversations = conversations
        self._participants = participants
        self._messages = messages
        self._index = index
        self._states = states
        self._addresses = addresses
        self._emit = emit

    def receive(
        self, address: str, proxy_address: str, body: str | None, pre_event: PreEvent
    ) -> InboundOutcome:
        """A message from `address` (the customer) to `proxy_address` (the Twilio number).

        A pre-event answer may change the message's body, author and attributes, or the new
        conversation's friendly_name."""
        channels.validate_pair(address, proxy_address)
        spec = ParticipantSpec(address=address, proxy_address=proxy_address)
        origin = Origin.sms()
        with self._lock:
            route = self._route(spec)
            pre = self._pre_event(spec, route, body, origin)
        if pre is None:
            return _not_routed(route)
        outcome = pre_event(pre)
        if outcome.rejected:
            return InboundOutcome(
                conversation_sid=route.holder.sid if route.holder else None,
                created=False,
                address_configuration_sid=_sid(route.configuration),
                rejected_status=outcome.rejected_status,
                rejected_by=pre.event_type,
            )
        changes = outcome.changes
        with self._lock:
            route = self._route(spec)
            conversation = route.holder
            if conversation is None:
                if route.service_sid is None:
                    return _not_routed(route)
                conversation = self._autocreate(
                    spec, route.service_sid, _text(changes.get("friendly_name"), None), origin
                )
            message = self._messages.add(
                conversation,
                _text(changes.get("author"), None) or address,
                _text(changes.get("body"), body),
                _text(changes.get("attributes"), None),
                origin,
            )
            self._emit(
                webhook_events.message_event(
                    self._account_sid, "onMessageAdded", conversation, message, origin
                )
            )
            return InboundOutcome(
                conversation.sid,
                created=route.holder is None,
                message_sid=message.sid,
                service_sid=conversation.service_sid,
                address_configuration_sid=_sid(route.configuration),
            )

    def _route(self, spec: ParticipantSpec) -> _Route:
        assert spec.address and spec.proxy_address
        configuration = self._addresses.for_inbound(spec.proxy_address)
        holder_sid = self._index.holder((spec.address, spec.proxy_address))
        if holder_sid is not None:
            return _Route(self._conversations.find(holder_sid), None, configuration)
        if configuration is None:
            return _Route(None, self._default_service_sid, None)
        if not configuration.auto_creation.enabled:
            return _Route(None, None, configuration)
        service_sid = configuration.auto_creation.conversation_service_sid
        return _Route(None, service_sid or self._default_service_sid, configuration)

    def _pre_event(
        self, spec: ParticipantSpec, route: _Route, body: str | None, origin: Origin
    ) -> Event | None:
        """The pre-event this message fires now; None when it goes nowhere."""
        assert spec.address and spec.proxy_address
        if route.holder is not None:
            conversation = route.holder
            holding = self._participants.holding(conversation, (spec.address, spec.proxy_address))
            now = self._clock.now()
            provisional = Message(
                sid="",
                conversation_sid=conversation.sid,
                service_sid=conversation.service_sid,
                seq=0,
                index=conversation.next_index,
                author=spec.address,
                body=body,
                attributes="{}",
                participant_sid=holding.sid,
                date_created=now,
                date_updated=now,
            )
            return webhook_events.message_event(
                self._account_sid, "onMessageAdd", conversation, provisional, origin
            )
        if route.service_sid is None:
            return None
        draft = self._conversations.draft(route.service_sid)
        return webhook_events.conversation_event(
            self._account_sid,
            "onConversationAdd",
            draft,
            origin,
            binding_of=spec.provisional(draft),
            message_body=body,
        )

    def _autocreate(
        self, spec: ParticipantSpec, service_sid: str, friendly_name: str | None, origin: Origin
    ) -> Conversation:
        """A new conversation in the service, holding the pair, announced as Twilio does."""
        conversation = self._conversations.create(service_sid, friendly_name=friendly_name)
        self._states.arm(conversation, conversation.date_created)
        participant = self._participants.add(conversation, spec)
        self._emit(
            webhook_events.conversation_event(
                self._account_sid,
                "onConversationAdded",
                conversation,
                origin,
                binding_of=participant,
            )
        )
        self._emit(
            webhook_events.participant_event(
                self._account_sid, "onParticipantAdded", conversation, participant, origin
            )
        )
        return conversation


def _not_routed(route: _Route) -> InboundOutcome:
    assert route.configuration is not None
    return InboundOutcome(
        conversation_sid=None,
        created=False,
        address_configuration_sid=route.configuration.sid,
        not_routed=(
            f"no conversation holds the pair and autocreation is off for "
            f"{route.configuration.address} ({route.configuration.sid})"
        ),
    )


def _sid(configuration: AddressConfiguration | None) -> str | None:
    return configuration.sid if configuration else None


def _text(value: Any, default: str | None) -> str | None:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)
