"""Inbound messages from customers: routed to the conversation holding their pair, or a
conversation autocreated for them; the pre-event first.

The pre-event (onMessageAdd to a holder, onConversationAdd before an autocreation) is sent and
answered with the store's lock released: a receiver may take seconds. The message is then routed
again under the lock, since the holder may have changed meanwhile. Autocreation fires
onConversationAdded, onParticipantAdded and onMessageAdded (no onParticipantAdd or onMessageAdd),
as Twilio does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator import channels, webhook_events
from emulator.binding_index import BindingIndex
from emulator.clock import TimeSource
from emulator.conversations import Conversations
from emulator.messages import Messages
from emulator.participants import Participants, ParticipantSpec
from emulator.records import Conversation, Message
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
    rejected_status: int | None = None
    rejected_by: str | None = None
    """The pre-event that rejected the message, when one did."""


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
        pre, holder_sid = self._pre_event(spec, body, origin)
        outcome = pre_event(pre)
        if outcome.rejected:
            return InboundOutcome(
                conversation_sid=holder_sid,
                created=False,
                rejected_status=outcome.rejected_status,
                rejected_by=pre.event_type,
            )
        changes = outcome.changes
        with self._lock:
            conversation, created = self._route(
                spec, _text(changes.get("friendly_name"), None), origin
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
            return InboundOutcome(conversation.sid, created, message.sid)

    def _pre_event(
        self, spec: ParticipantSpec, body: str | None, origin: Origin
    ) -> tuple[Event, str | None]:
        """The pre-event this message fires now, and the SID of the conversation it goes to."""
        assert spec.address and spec.proxy_address
        with self._lock:
            holder_sid = self._index.holder((spec.address, spec.proxy_address))
            if holder_sid is not None:
                conversation = self._conversations.find(holder_sid)
                holding = self._participants.holding(
                    conversation, (spec.address, spec.proxy_address)
                )
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
                event = webhook_events.message_event(
                    self._account_sid, "onMessageAdd", conversation, provisional, origin
                )
                return event, holder_sid
            draft = self._conversations.draft(self._default_service_sid)
            event = webhook_events.conversation_event(
                self._account_sid,
                "onConversationAdd",
                draft,
                origin,
                binding_of=spec.provisional(draft),
                message_body=body,
            )
            return event, None

    def _route(
        self, spec: ParticipantSpec, friendly_name: str | None, origin: Origin
    ) -> tuple[Conversation, bool]:
        """The conversation holding the pair, or a new one holding it; whether it is new."""
        assert spec.address and spec.proxy_address
        holder_sid = self._index.holder((spec.address, spec.proxy_address))
        if holder_sid is not None:
            return self._conversations.find(holder_sid), False
        conversation = self._conversations.create(
            self._default_service_sid, friendly_name=friendly_name
        )
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
        return conversation, True


def _text(value: Any, default: str | None) -> str | None:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)
