"""The emulator's state and Twilio's rules over it, behind one facade and one lock.

Each concept has its module: `services` (and webhook configuration), `conversations`, `states`
(and timers), `binding_index` (who holds each pair), `participants`, `messages`,
`address_configurations`, `inbound` (routing and autocreation). They keep no lock of their own: the Store takes its re-entrant lock
around every public method, so every check-then-write (the binding rule, unique names, closing)
runs whole, and concurrent requests can never both pass a check. Nothing slow happens under the
lock: no network, no injected latency. Post-events are handed to the publisher while the lock is
held, which keeps them in the order the changes happened.

Methods return snapshots (copies), never the live records. Every time the store writes comes
from `clock.now()`. The `*_page` methods pick one page of a list under the lock and snapshot only
its items (`paging.select`), so a page costs its size, not the list's.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from emulator import services as services_module
from emulator import webhook_events
from emulator.address_configurations import AddressConfigurations, AutoCreationChange
from emulator.binding_index import BindingIndex
from emulator.clock import Clock, TimeSource
from emulator.conversations import Conversations, check_causes
from emulator.defaults import DATE_UPDATED_ON, MIN_TIMER_CLOSED, MIN_TIMER_INACTIVE
from emulator.errors import ConversationClosed, TimersRequireState
from emulator.inbound import Inbound, InboundOutcome, PreEvent, no_pre_event
from emulator.messages import Messages
from emulator.paging import Page, PageRequest, select
from emulator.participants import Participants, ParticipantSpec
from emulator.records import (
    ACTIVE,
    CLOSED,
    INACTIVE,
    STATES,
    UNSET,
    AddressConfiguration,
    Conversation,
    Message,
    Participant,
    Service,
    Unset,
    WebhookConfig,
)
from emulator.services import Services
from emulator.states import States, check_state, parse_timer
from emulator.webhook_events import Event, Origin

__all__ = [
    "ACTIVE",
    "AddressConfiguration",
    "AutoCreationChange",
    "CLOSED",
    "INACTIVE",
    "STATES",
    "UNSET",
    "Clock",
    "Conversation",
    "InboundOutcome",
    "Message",
    "Origin",
    "Participant",
    "ParticipantSpec",
    "Service",
    "Store",
    "TimeSource",
    "Unset",
    "WebhookConfig",
]


class Store:
    """Services, conversations, participants, messages, webhook configuration and inbound
    messages, thread-safe."""

    def __init__(
        self,
        clock: TimeSource,
        account_sid: str,
        default_service_sid: str,
        messaging_service_sid: str,
        publish: Callable[[Event], None] = lambda event: None,
        *,
        date_updated_on: tuple[str, ...] = DATE_UPDATED_ON,
    ) -> None:
        """`date_updated_on`: what bumps a conversation's date_updated, from
        `conversations.DATE_UPDATED_CAUSES`."""
        self.lock = threading.RLock()
        self.date_updated_on = check_causes(date_updated_on)
        self.clock = clock
        self.account_sid = account_sid
        self.default_service_sid = default_service_sid
        self.messaging_service_sid = messaging_service_sid
        self._publish = publish
        self.reset()

    def reset(self) -> None:
        """Everything gone; the default service (same SID) and nothing else."""
        with self.lock:
            seq = itertools.count(1)
            self._services = Services(self.clock, self.default_service_sid, seq)
            self._index = BindingIndex()
            self._conversations = Conversations(
                self._services, self.clock, seq, self.messaging_service_sid, self.date_updated_on
            )
            self._states = States(
                self._conversations, self._index, seq, self._emit, self.account_sid
            )
            self._participants = Participants(self._conversations, self._index, self.clock, seq)
            self._messages = Messages(self._conversations, self._states, self.clock, seq)
            self._addresses = AddressConfigurations(self._services, self.clock, seq)
            self._inbound = Inbound(
                lock=self.lock,
                clock=self.clock,
                account_sid=self.account_sid,
                default_service_sid=self.default_service_sid,
                conversations=self._conversations,
                participants=self._participants,
                messages=self._messages,
                index=self._index,
                states=self._states,
                addresses=self._addresses,
                emit=self._emit,
            )

    # -- services and webhook configuration ---------------------------------------------------

    def create_service(self, friendly_name: str | None) -> Service:
        with self.lock:
            return services_module.snapshot(self._services.create(friendly_name))

    def list_services(self) -> list[Service]:
        with self.lock:
            return [services_module.snapshot(s) for s in self._services.all()]

    def get_service(self, service_sid: str) -> Service:
        with self.lock:
            return services_module.snapshot(self._services.get(service_sid))

    def webhook_config(self, service_sid: str | None) -> WebhookConfig:
        """The service's configuration, or the account's when `service_sid` is None."""
        with self.lock:
            return copy.copy(self._services.webhook_config(service_sid))

    def update_webhook_config(
        self,
        service_sid: str | None,
        *,
        pre_webhook_url: str | None | Unset = UNSET,
        post_webhook_url: str | None | Unset = UNSET,
        filters: tuple[str, ...] | Unset = UNSET,
        method: str | Unset = UNSET,
        target: str | Unset = UNSET,
    ) -> WebhookConfig:
        with self.lock:
            config = self._services.update_webhook_config(
                service_sid,
                pre_webhook_url=pre_webhook_url,
                post_webhook_url=post_webhook_url,
                filters=filters,
                method=method,
                target=target,
            )
            return copy.copy(config)

    def webhook_configs_for(self, service_sid: str) -> list[WebhookConfig]:
        """The configurations an event of this service goes to: the service's, then the account's.

        Twilio does not document how the two levels combine; the emulator sends to both.
        """
        with self.lock:
            return [copy.copy(c) for c in self._services.webhook_configs_for(service_sid)]

    # -- conversations ------------------------------------------------------------------------

    def create_conversation(
        self,
        service_sid: str,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        attributes: str | None = None,
        messaging_service_sid: str | None = None,
        state: str | None = None,
        timer_inactive: str | None = None,
        timer_closed: str | None = None,
        origin: Origin,
    ) -> Conversation:
        if (timer_inactive or timer_closed) and not state:
            raise TimersRequireState()
        inactive = parse_timer(timer_inactive, "Timers.Inactive", MIN_TIMER_INACTIVE)
        closed = parse_timer(timer_closed, "Timers.Closed", MIN_TIMER_CLOSED)
        state = check_state(state or ACTIVE)
        with self.lock:
            conversation = self._conversations.create(
                service_sid,
                friendly_name=friendly_name,
                unique_name=unique_name,
                attributes=attributes,
                messaging_service_sid=messaging_service_sid,
                state=state,
                timer_inactive=inactive,
                timer_closed=closed,
                created_by=origin.client_identity or "system",
            )
            self._states.arm(conversation, conversation.date_created)
            self._emit_conversation("onConversationAdded", conversation, origin)
            return conversation.snapshot()

    def get_conversation(self, service_sid: str, key: str) -> Conversation:
        """By CH SID or by UniqueName, within the service."""
        with self.lock:
            return self._conversations.get(service_sid, key).snapshot()

    def find_conversation(self, conversation_sid: str) -> Conversation:
        """By CH SID in any service (for the SDK and inbound stand-ins)."""
        with self.lock:
            return self._conversations.find(conversation_sid).snapshot()

    def list_conversations(
        self,
        service_sid: str,
        *,
        state: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Conversation]:
        if state:
            check_state(state)
        with self.lock:
            found = self._conversations.in_service(service_sid, state=state, start=start, end=end)
            return [c.snapshot() for c in found]

    def conversations_page(
        self,
        service_sid: str,
        request: PageRequest,
        *,
        state: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Page[Conversation]:
        """One page of `list_conversations`: snapshots of the page's conversations only."""
        if state:
            check_state(state)
        with self.lock:
            listing = self._conversations.listing(service_sid, state=state, start=start, end=end)
            return select(listing, request).mapped(Conversation.snapshot)

    def update_conversation(
        self,
        service_sid: str,
        key: str,
        *,
        friendly_name: str | None | Unset = UNSET,
        unique_name: str | None | Unset = UNSET,
        attributes: str | None | Unset = UNSET,
        messaging_service_sid: str | None | Unset = UNSET,
        state: str | None | Unset = UNSET,
        timer_inactive: str | None | Unset = UNSET,
        timer_closed: str | None | Unset = UNSET,
        origin: Origin,
    ) -> Conversation:
        new_state = None if isinstance(state, Unset) or not state else check_state(state)
        inactive = (
            UNSET
            if isinstance(timer_inactive, Unset)
            else parse_timer(timer_inactive, "Timers.Inactive", MIN_TIMER_INACTIVE)
        )
        closed = (
            UNSET
            if isinstance(timer_closed, Unset)
            else parse_timer(timer_closed, "Timers.Closed", MIN_TIMER_CLOSED)
        )
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            if conversation.state == CLOSED:
                raise ConversationClosed()
            self._conversations.change(
                conversation,
                friendly_name=friendly_name,
                unique_name=unique_name,
                attributes=attributes,
                messaging_service_sid=messaging_service_sid,
            )
            now = self.clock.now()
            self._conversations.touch(conversation, "update", now)
            self._states.set_timers(conversation, inactive=inactive, closed=closed)
            state_from = conversation.state
            if new_state and new_state != state_from:
                self._states.move(conversation, new_state, now)
            if conversation.state != CLOSED:
                self._states.arm(conversation, now, only_missing=True)
            self._emit_conversation("onConversationUpdated", conversation, origin)
            if conversation.state != state_from:
                self._states.announce(conversation, state_from, webhook_events.REASON_API, origin)
            return conversation.snapshot()

    def delete_conversation(self, service_sid: str, key: str, *, origin: Origin) -> None:
        """Deleting releases the conversation's bindings and its unique name."""
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            self._participants.forget(conversation)
            self._conversations.remove(conversation)
            self._emit_conversation(
                "onConversationRemoved", conversation, origin, removed_at=self.clock.now()
            )

    def holder_of(
        self, address: str, proxy_address: str
    ) -> tuple[Conversation, Participant] | None:
        """The non-closed conversation holding the pair and the participant holding it, if any."""
        with self.lock:
            sid = self._index.holder((address, proxy_address))
            if sid is None:
                return None
            conversation = self._conversations.find(sid)
            participant = self._participants.holding(conversation, (address, proxy_address))
            return conversation.snapshot(), copy.copy(participant)

    # -- states and timers ----------------------------------------------------------------------

    def fire_due_timers(self) -> int:
        """Move every conversation whose timer is due; returns how many state changes fired."""
        with self.lock:
            return self._states.fire_due(self.clock.now())

    # -- participants -------------------------------------------------------------------------

    def add_participant(
        self, service_sid: str, key: str, spec: ParticipantSpec, *, origin: Origin
    ) -> Participant:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            participant = self._participants.add(conversation, spec)
            self._emit_participant("onParticipantAdded", conversation, participant, origin)
            return copy.copy(participant)

    def get_participant(self, service_sid: str, key: str, participant_key: str) -> Participant:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            return copy.copy(self._participants.get(conversation, participant_key))

    def list_participants(self, service_sid: str, key: str) -> list[Participant]:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            return [copy.copy(p) for p in conversation.participants.values()]

    def update_participant(
        self,
        service_sid: str,
        key: str,
        participant_key: str,
        *,
        attributes: str | None | Unset = UNSET,
        role_sid: str | None | Unset = UNSET,
        identity: str | None | Unset = UNSET,
        proxy_address: str | None | Unset = UNSET,
        projected_address: str | None | Unset = UNSET,
        last_read_message_index: int | None | Unset = UNSET,
        last_read_timestamp: str | None | Unset = UNSET,
        origin: Origin,
    ) -> Participant:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            participant = self._participants.get(conversation, participant_key)
            self._participants.update(
                conversation,
                participant,
                attributes=attributes,
                role_sid=role_sid,
                identity=identity,
                proxy_address=proxy_address,
                projected_address=projected_address,
                last_read_message_index=last_read_message_index,
                last_read_timestamp=last_read_timestamp,
            )
            self._emit_participant("onParticipantUpdated", conversation, participant, origin)
            return copy.copy(participant)

    def remove_participant(
        self, service_sid: str, key: str, participant_key: str, *, origin: Origin
    ) -> None:
        """Removing an SMS or WhatsApp participant releases its pair."""
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            participant = self._participants.get(conversation, participant_key)
            self._participants.remove(conversation, participant)
            self._emit_participant(
                "onParticipantRemoved",
                conversation,
                participant,
                origin,
                removed_at=self.clock.now(),
            )

    def participant_conversations(
        self, service_sid: str, *, address: str | None = None, identity: str | None = None
    ) -> list[tuple[Participant, Conversation]]:
        """Every (participant, conversation) of the service where the address or identity is a
        participant, in the order the participants were added; closed conversations included."""
        with self.lock:
            self._services.get(service_sid)
            found = self._participants.where(service_sid, address=address, identity=identity)
            return [(copy.copy(p), c.snapshot()) for p, c in found]

    def participant_conversations_page(
        self,
        service_sid: str,
        request: PageRequest,
        *,
        address: str | None = None,
        identity: str | None = None,
    ) -> Page[tuple[Participant, Conversation]]:
        """One page of `participant_conversations`: copies of the page's items only."""
        with self.lock:
            self._services.get(service_sid)
            listing = self._participants.listing(service_sid, address=address, identity=identity)
            conversation_of = self._participants.conversation_of
            return select(listing, request).mapped(
                lambda p: (copy.copy(p), conversation_of(p).snapshot())
            )

    # -- messages -----------------------------------------------------------------------------

    def add_message(
        self,
        service_sid: str,
        key: str,
        *,
        author: str | None,
        body: str | None,
        attributes: str | None,
        origin: Origin,
    ) -> Message:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            message = self._messages.add(conversation, author, body, attributes, origin)
            self._emit(
                webhook_events.message_event(
                    self.account_sid, "onMessageAdded", conversation, message, origin
                )
            )
            return message

    def get_message(self, service_sid: str, key: str, message_key: str) -> Message:
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            return self._messages.get(conversation, message_key)

    def list_messages(self, service_sid: str, key: str, *, order: str = "asc") -> list[Message]:
        """Oldest first (`asc`) or newest first (`desc`)."""
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            return self._messages.in_order(conversation, order)

    def messages_page(
        self, service_sid: str, key: str, request: PageRequest, *, order: str = "asc"
    ) -> Page[Message]:
        """One page of `list_messages` (messages are immutable: no copies needed)."""
        with self.lock:
            conversation = self._conversations.get(service_sid, key)
            return select(self._messages.listing(conversation, order), request)

    # -- address configurations ---------------------------------------------------------------

    def create_address_configuration(
        self,
        type: str,
        address: str,
        *,
        friendly_name: str | None = None,
        address_country: str | None = None,
        auto_creation: AutoCreationChange | None = None,
    ) -> AddressConfiguration:
        with self.lock:
            configuration = self._addresses.create(
                type,
                address,
                friendly_name=friendly_name,
                address_country=address_country,
                auto_creation=auto_creation,
            )
            return _copy_configuration(configuration)

    def list_address_configurations(self, type: str | None = None) -> list[AddressConfiguration]:
        with self.lock:
            return [_copy_configuration(c) for c in self._addresses.all(type)]

    def get_address_configuration(self, key: str) -> AddressConfiguration:
        """By IG SID or by address."""
        with self.lock:
            return _copy_configuration(self._addresses.get(key))

    def update_address_configuration(
        self,
        key: str,
        *,
        friendly_name: str | None | Unset = UNSET,
        auto_creation: AutoCreationChange | None = None,
    ) -> AddressConfiguration:
        with self.lock:
            configuration = self._addresses.get(key)
            self._addresses.update(
                configuration, friendly_name=friendly_name, auto_creation=auto_creation
            )
            return _copy_configuration(configuration)

    def delete_address_configuration(self, key: str) -> None:
        with self.lock:
            self._addresses.delete(self._addresses.get(key))

    # -- inbound ------------------------------------------------------------------------------

    def receive_inbound(
        self,
        address: str,
        proxy_address: str,
        body: str | None = None,
        *,
        pre_event: PreEvent = no_pre_event,
    ) -> InboundOutcome:
        """An inbound message from `address` to the Twilio number `proxy_address`: to the
        conversation holding the pair, or autocreated (see `emulator.inbound`). `pre_event` is
        called without the lock held."""
        return self._inbound.receive(address, proxy_address, body, pre_event)

    # -- events and counts --------------------------------------------------------------------

    def _emit_conversation(
        self,
        event_type: str,
        conversation: Conversation,
        origin: Origin,
        *,
        removed_at: datetime | None = None,
    ) -> None:
        self._emit(
            webhook_events.conversation_event(
                self.account_sid, event_type, conversation, origin, removed_at=removed_at
            )
        )

    def _emit_participant(
        self,
        event_type: str,
        conversation: Conversation,
        participant: Participant,
        origin: Origin,
        *,
        removed_at: datetime | None = None,
    ) -> None:
        self._emit(
            webhook_events.participant_event(
                self.account_sid,
                event_type,
                conversation,
                participant,
                origin,
                removed_at=removed_at,
            )
        )

    def _emit(self, event: Event) -> None:
        # Called with the lock held: events reach the publisher in the order they happened.
        self._publish(event)

    def counts(self) -> dict[str, int]:
        """How much state there is (for `GET /_emulator/stats`)."""
        with self.lock:
            return {
                "services": len(self._services),
                "conversations": len(self._conversations),
                "bindings": len(self._index),
            }


def _copy_configuration(configuration: AddressConfiguration) -> AddressConfiguration:
    return replace(configuration, auto_creation=copy.copy(configuration.auto_creation))
