"""The emulator's state and Twilio's rules over it.

One re-entrant lock guards everything: every check-then-write (the binding rule, unique names,
closing) runs whole under it, so concurrent requests can never both pass a check. Nothing slow
happens under the lock: no network, no injected latency. Post-events are handed to the publisher
while the lock is held, which keeps them in the order the changes happened.

Methods return snapshots (copies), never the live records.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from emulator import bindings, webhook_events
from emulator.bindings import Binding
from emulator.clock import Clock, parse_duration
from emulator.defaults import MIN_TIMER_CLOSED, MIN_TIMER_INACTIVE
from emulator.errors import (
    AddressEmpty,
    BindingInConversation,
    BindingInUse,
    ConversationClosed,
    ConversationNotFound,
    IdentityInConversation,
    InvalidParameter,
    NotFound,
    TimersRequireState,
    UniqueNameTaken,
)
from emulator.records import (
    ACTIVE,
    CLOSED,
    INACTIVE,
    STATES,
    UNSET,
    Conversation,
    Message,
    Participant,
    Service,
    Unset,
    WebhookConfig,
)
from emulator.sids import new_sid
from emulator.webhook_events import Event, Origin

WEBHOOK_METHODS = ("GET", "POST")
WEBHOOK_TARGETS = ("webhook", "flex")


@dataclass(frozen=True)
class ParticipantSpec:
    """What a participant add asks for, before any rule is checked."""

    identity: str | None = None
    address: str | None = None
    proxy_address: str | None = None
    projected_address: str | None = None
    attributes: str | None = None
    role_sid: str | None = None

    def validate(self) -> Binding | None:
        """The binding of a non-chat participant, None for a chat one; raises on a bad spec."""
        if self.identity:
            if self.address or self.proxy_address:
                raise InvalidParameter(
                    "A participant has either an Identity (chat) or a MessagingBinding.Address "
                    "and MessagingBinding.ProxyAddress (SMS, WhatsApp), not both"
                )
            return None
        if not self.address and not self.proxy_address:
            raise AddressEmpty(
                "Identity not provided and MessagingBinding.Address is empty: a participant "
                "needs one of them"
            )
        channel = bindings.validate(self.address, self.proxy_address)
        assert self.address and self.proxy_address  # validate() raised otherwise
        return Binding(channel, self.address, self.proxy_address, self.projected_address)

    def provisional(self, conversation: Conversation) -> Participant:
        """The participant as a pre-event describes it: no SID and no dates yet."""
        binding = self.validate()
        return Participant(
            sid="",
            conversation_sid=conversation.sid,
            service_sid=conversation.service_sid,
            seq=0,
            identity=self.identity or None,
            attributes=self.attributes or "{}",
            role_sid=self.role_sid,
            binding=binding,
            projected_address=self.projected_address if binding is None else None,
            user_sid=None,
            date_created=None,
            date_updated=None,
        )


@dataclass(frozen=True)
class InboundResult:
    conversation: Conversation
    participant: Participant | None
    message: Message
    created: bool


class Store:
    """Services, conversations, participants, messages and webhook configuration."""

    def __init__(
        self,
        clock: Clock,
        account_sid: str,
        default_service_sid: str,
        messaging_service_sid: str,
        publish: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.account_sid = account_sid
        self.default_service_sid = default_service_sid
        self.messaging_service_sid = messaging_service_sid
        self._publish = publish
        self.reset()

    def reset(self) -> None:
        """Everything gone; the default service (same SID) and nothing else."""
        with self.lock:
            self._seq = itertools.count(1)
            self._services: dict[str, Service] = {}
            self._conversations: dict[str, dict[str, Conversation]] = {}
            self._conversation_service: dict[str, str] = {}
            self._unique_names: dict[tuple[str, str], str] = {}
            # (address, proxy address) -> the one non-closed conversation holding it, account-wide.
            self._holders: dict[tuple[str, str], str] = {}
            self._by_address: dict[str, dict[str, Participant]] = {}
            self._by_identity: dict[tuple[str, str], dict[str, Participant]] = {}
            self._users: dict[tuple[str, str], str] = {}
            self._account_webhooks = WebhookConfig()
            self._timers: list[tuple[datetime, int, str, str]] = []
            now = self.clock.now()
            self._services[self.default_service_sid] = Service(
                self.default_service_sid, 0, "Default Conversations Service", now, now
            )
            self._conversations[self.default_service_sid] = {}

    # -- services -----------------------------------------------------------------------------

    def create_service(self, friendly_name: str | None) -> Service:
        with self.lock:
            now = self.clock.now()
            service = Service(new_sid("IS"), next(self._seq), friendly_name, now, now)
            self._services[service.sid] = service
            self._conversations[service.sid] = {}
            return self._service_snapshot(service)

    def list_services(self) -> list[Service]:
        with self.lock:
            return [self._service_snapshot(s) for s in self._services.values()]

    def get_service(self, service_sid: str) -> Service:
        with self.lock:
            return self._service_snapshot(self._service(service_sid))

    def _service(self, service_sid: str) -> Service:
        service = self._services.get(service_sid)
        if service is None:
            raise NotFound(f"The requested resource /Services/{service_sid} was not found")
        return service

    @staticmethod
    def _service_snapshot(service: Service) -> Service:
        return replace(service, webhooks=copy.copy(service.webhooks))

    # -- webhook configuration ----------------------------------------------------------------

    def webhook_config(self, service_sid: str | None) -> WebhookConfig:
        """The service's configuration, or the account's when `service_sid` is None."""
        with self.lock:
            return copy.copy(self._webhook_config(service_sid))

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
        if not isinstance(method, Unset) and method.upper() not in WEBHOOK_METHODS:
            raise InvalidParameter(f"Method: {method!r} must be GET or POST")
        if not isinstance(target, Unset) and target not in WEBHOOK_TARGETS:
            raise InvalidParameter(f"Target: {target!r} must be webhook or flex")
        with self.lock:
            config = self._webhook_config(service_sid)
            if not isinstance(pre_webhook_url, Unset):
                config.pre_webhook_url = pre_webhook_url or None
            if not isinstance(post_webhook_url, Unset):
                config.post_webhook_url = post_webhook_url or None
            if not isinstance(filters, Unset):
                config.filters = tuple(filters)
            if not isinstance(method, Unset):
                config.method = method.upper()
            if not isinstance(target, Unset):
                config.target = target
            return copy.copy(config)

    def webhook_configs_for(self, service_sid: str) -> list[WebhookConfig]:
        """The configurations an event of this service goes to: the service's, then the account's.

        Twilio does not document how the two levels combine; the emulator sends to both.
        """
        with self.lock:
            return [copy.copy(self._webhook_config(service_sid)), copy.copy(self._account_webhooks)]

    def _webhook_config(self, service_sid: str | None) -> WebhookConfig:
        if service_sid is None:
            return self._account_webhooks
        return self._service(service_sid).webhooks

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
        inactive = _timer(timer_inactive, "Timers.Inactive", MIN_TIMER_INACTIVE)
        closed = _timer(timer_closed, "Timers.Closed", MIN_TIMER_CLOSED)
        state = _check_state(state or ACTIVE)
        with self.lock:
            conversation = self._create_conversation(
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
            self._emit_conversation("onConversationAdded", conversation, origin)
            return conversation.snapshot()

    def _create_conversation(
        self,
        service_sid: str,
        *,
        friendly_name: str | None,
        unique_name: str | None,
        attributes: str | None,
        messaging_service_sid: str | None,
        state: str,
        timer_inactive: timedelta | None,
        timer_closed: timedelta | None,
        created_by: str | None,
    ) -> Conversation:
        self._service(service_sid)
        if unique_name:
            self._claim_unique_name(service_sid, unique_name, None)
        now = self.clock.now()
        conversation = Conversation(
            sid=new_sid("CH"),
            service_sid=service_sid,
            seq=next(self._seq),
            friendly_name=friendly_name,
            unique_name=unique_name or None,
            attributes=attributes or "{}",
            messaging_service_sid=messaging_service_sid or self.messaging_service_sid,
            state=state,
            date_created=now,
            date_updated=now,
            created_by=created_by,
            timer_inactive=timer_inactive,
            timer_closed=timer_closed,
        )
        if unique_name:
            self._unique_names[(service_sid, unique_name)] = conversation.sid
        self._conversations[service_sid][conversation.sid] = conversation
        self._conversation_service[conversation.sid] = service_sid
        self._arm_timers(conversation, now)
        return conversation

    def get_conversation(self, service_sid: str, key: str) -> Conversation:
        """By CH SID or by UniqueName, within the service."""
        with self.lock:
            return self._conversation(service_sid, key).snapshot()

    def find_conversation(self, conversation_sid: str) -> Conversation:
        """By CH SID in any service (for the SDK and inbound stand-ins)."""
        with self.lock:
            service_sid = self._conversation_service.get(conversation_sid)
            if service_sid is None:
                raise ConversationNotFound(f"Conversation {conversation_sid} not found")
            return self._conversation(service_sid, conversation_sid).snapshot()

    def list_conversations(
        self,
        service_sid: str,
        *,
        state: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Conversation]:
        if state:
            _check_state(state)
        with self.lock:
            self._service(service_sid)
            found = []
            for conversation in self._conversations[service_sid].values():
                if state and conversation.state != state:
                    continue
                if start and conversation.date_created < start:
                    continue
                if end and conversation.date_created >= end:
                    continue
                found.append(conversation.snapshot())
            return found

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
        new_state = None if isinstance(state, Unset) or not state else _check_state(state)
        inactive = (
            UNSET
            if isinstance(timer_inactive, Unset)
            else _timer(timer_inactive, "Timers.Inactive", MIN_TIMER_INACTIVE)
        )
        closed = (
            UNSET
            if isinstance(timer_closed, Unset)
            else _timer(timer_closed, "Timers.Closed", MIN_TIMER_CLOSED)
        )
        with self.lock:
            conversation = self._conversation(service_sid, key)
            if conversation.state == CLOSED:
                raise ConversationClosed()
            if not isinstance(unique_name, Unset) and unique_name != conversation.unique_name:
                if unique_name:
                    self._claim_unique_name(service_sid, unique_name, conversation.sid)
                    self._unique_names[(service_sid, unique_name)] = conversation.sid
                if conversation.unique_name:
                    del self._unique_names[(service_sid, conversation.unique_name)]
                conversation.unique_name = unique_name or None
            if not isinstance(friendly_name, Unset):
                conversation.friendly_name = friendly_name
            if not isinstance(attributes, Unset):
                conversation.attributes = attributes or "{}"
            if not isinstance(messaging_service_sid, Unset) and messaging_service_sid:
                conversation.messaging_service_sid = messaging_service_sid
            now = self.clock.now()
            conversation.date_updated = now
            if not isinstance(inactive, Unset):
                conversation.timer_inactive = inactive
                conversation.date_inactive = None
            if not isinstance(closed, Unset):
                conversation.timer_closed = closed
                conversation.date_closed = None
            state_from = conversation.state
            if new_state and new_state != state_from:
                self._set_state(conversation, new_state, now)
            if conversation.state != CLOSED:
                self._arm_timers(conversation, now, only_missing=True)
            self._emit_conversation("onConversationUpdated", conversation, origin)
            if conversation.state != state_from:
                self._emit(
                    webhook_events.state_updated(
                        self.account_sid,
                        conversation,
                        state_from,
                        webhook_events.REASON_API,
                        origin,
                    )
                )
            return conversation.snapshot()

    def delete_conversation(self, service_sid: str, key: str, *, origin: Origin) -> None:
        """Deleting releases the conversation's bindings and its unique name."""
        with self.lock:
            conversation = self._conversation(service_sid, key)
            self._release_bindings(conversation)
            for participant in list(conversation.participants.values()):
                self._unindex(participant)
            if conversation.unique_name:
                del self._unique_names[(service_sid, conversation.unique_name)]
            del self._conversations[service_sid][conversation.sid]
            del self._conversation_service[conversation.sid]
            self._emit_conversation(
                "onConversationRemoved", conversation, origin, removed_at=self.clock.now()
            )

    def holder_of(
        self, address: str, proxy_address: str
    ) -> tuple[Conversation, Participant] | None:
        """The non-closed conversation holding the pair and the participant holding it, if any."""
        with self.lock:
            sid = self._holders.get((address, proxy_address))
            if sid is None:
                return None
            conversation = self._live(sid)
            participant = next(
                p
                for p in conversation.participants.values()
                if p.binding and p.binding.pair == (address, proxy_address)
            )
            return conversation.snapshot(), copy.copy(participant)

    def draft_conversation(self) -> Conversation:
        """The conversation an autocreation would make, as its pre-event describes it (no SID)."""
        now = self.clock.now()
        return Conversation(
            sid="",
            service_sid=self.default_service_sid,
            seq=0,
            friendly_name=None,
            unique_name=None,
            attributes="{}",
            messaging_service_sid=self.messaging_service_sid,
            state=ACTIVE,
            date_created=now,
            date_updated=now,
            created_by="system",
        )

    def _conversation(self, service_sid: str, key: str) -> Conversation:
        self._service(service_sid)
        conversations = self._conversations[service_sid]
        conversation = conversations.get(key)
        if conversation is None:
            sid = self._unique_names.get((service_sid, key))
            conversation = conversations.get(sid) if sid else None
        if conversation is None:
            raise ConversationNotFound(f"Conversation {key} not found")
        return conversation

    def _live(self, conversation_sid: str) -> Conversation:
        return self._conversations[self._conversation_service[conversation_sid]][conversation_sid]

    def _claim_unique_name(self, service_sid: str, name: str, owner: str | None) -> None:
        holder = self._unique_names.get((service_sid, name))
        if holder is not None and holder != owner:
            raise UniqueNameTaken(f"Conversation with unique name {name!r} already exists")

    def _set_state(self, conversation: Conversation, state: str, when: datetime) -> None:
        conversation.state = state
        conversation.date_updated = when
        if state == CLOSED:
            # Closed is final: the pairs are free for other conversations and no timer remains.
            self._release_bindings(conversation)
            conversation.date_inactive = conversation.date_closed = None
        elif state == INACTIVE:
            conversation.date_inactive = None
        else:
            self._arm_timers(conversation, when, only_missing=True)

    def _release_bindings(self, conversation: Conversation) -> None:
        for participant in conversation.participants.values():
            if participant.binding and self._holders.get(participant.binding.pair) == (
                conversation.sid
            ):
                del self._holders[participant.binding.pair]

    # -- timers -------------------------------------------------------------------------------

    def _arm_timers(
        self, conversation: Conversation, now: datetime, *, only_missing: bool = False
    ) -> None:
        """Set the absolute timer dates from the durations; activity re-arms them from `now`.

        Whether activity resets Twilio's timers is undocumented: the emulator resets both.
        """
        if conversation.state == ACTIVE and conversation.timer_inactive:
            keep = only_missing and conversation.date_inactive
            if not keep:
                conversation.date_inactive = now + conversation.timer_inactive
                self._push_timer(conversation.date_inactive, conversation.sid, INACTIVE)
        if conversation.state != CLOSED and conversation.timer_closed:
            keep = only_missing and conversation.date_closed
            if not keep:
                conversation.date_closed = now + conversation.timer_closed
                self._push_timer(conversation.date_closed, conversation.sid, CLOSED)

    def _push_timer(self, due: datetime, conversation_sid: str, kind: str) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), conversation_sid, kind))

    def fire_due_timers(self) -> int:
        """Move every conversation whose timer is due; returns how many state changes fired."""
        fired = 0
        with self.lock:
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                due, _, sid, kind = heapq.heappop(self._timers)
                if sid not in self._conversation_service:
                    continue  # deleted since
                conversation = self._live(sid)
                if kind == INACTIVE:
                    if conversation.date_inactive != due or conversation.state != ACTIVE:
                        continue  # re-armed or moved since: a stale entry
                elif conversation.date_closed != due or conversation.state == CLOSED:
                    continue
                state_from = conversation.state
                self._set_state(conversation, kind, max(due, conversation.date_updated))
                self._emit(
                    webhook_events.state_updated(
                        self.account_sid,
                        conversation,
                        state_from,
                        webhook_events.REASON_TIMER,
                        Origin.timer(),
                    )
                )
                fired += 1
        return fired

    # -- participants -------------------------------------------------------------------------

    def add_participant(
        self, service_sid: str, key: str, spec: ParticipantSpec, *, origin: Origin
    ) -> Participant:
        with self.lock:
            conversation = self._conversation(service_sid, key)
            participant = self._add_participant(conversation, spec)
            self._emit(
                webhook_events.participant_event(
                    self.account_sid, "onParticipantAdded", conversation, participant, origin
                )
            )
            return copy.copy(participant)

    def _add_participant(self, conversation: Conversation, spec: ParticipantSpec) -> Participant:
        """The rules of adding a participant, checked and applied in one go (lock held)."""
        if conversation.state == CLOSED:
            raise ConversationClosed()
        binding = spec.validate()
        if binding is None:
            assert spec.identity
            if any(p.identity == spec.identity for p in conversation.participants.values()):
                raise IdentityInConversation()
        else:
            self._check_pair_free(conversation, binding.pair)
        now = self.clock.now()
        participant = Participant(
            sid=new_sid("MB"),
            conversation_sid=conversation.sid,
            service_sid=conversation.service_sid,
            seq=next(self._seq),
            identity=spec.identity or None,
            attributes=spec.attributes or "{}",
            role_sid=spec.role_sid or None,
            binding=binding,
            projected_address=spec.projected_address if binding is None else None,
            user_sid=self._user_sid(conversation.service_sid, spec.identity),
            date_created=now,
            date_updated=now,
        )
        conversation.participants[participant.sid] = participant
        if binding is not None:
            self._holders[binding.pair] = conversation.sid
        self._index(participant)
        return participant

    def _check_pair_free(self, conversation: Conversation, pair: tuple[str, str]) -> None:
        holder = self._holders.get(pair)
        if holder == conversation.sid:
            raise BindingInConversation()
        if holder is not None:
            raise BindingInUse(holder)

    def get_participant(self, service_sid: str, key: str, participant_key: str) -> Participant:
        with self.lock:
            conversation = self._conversation(service_sid, key)
            return copy.copy(self._participant(conversation, participant_key))

    def list_participants(self, service_sid: str, key: str) -> list[Participant]:
        with self.lock:
            conversation = self._conversation(service_sid, key)
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
            conversation = self._conversation(service_sid, key)
            participant = self._participant(conversation, participant_key)
            if conversation.state == CLOSED:
                raise ConversationClosed()
            binding = participant.binding
            if not isinstance(identity, Unset) and identity != participant.identity:
                if binding is not None:
                    raise InvalidParameter("Identity can only be set on a chat participant")
                if not identity:
                    raise InvalidParameter("Identity of a chat participant can not be empty")
                if any(p.identity == identity for p in conversation.participants.values()):
                    raise IdentityInConversation()
                self._unindex(participant)
                participant.identity = identity
                participant.user_sid = self._user_sid(conversation.service_sid, identity)
                self._index(participant)
            moves_pair = binding is not None and proxy_address != binding.proxy_address
            if not isinstance(proxy_address, Unset) and binding is not None and moves_pair:
                channel = bindings.validate(binding.address, proxy_address)
                assert proxy_address
                new = replace(binding, type=channel, proxy_address=proxy_address)
                self._check_pair_free(conversation, new.pair)
                del self._holders[binding.pair]
                self._holders[new.pair] = conversation.sid
                participant.binding = binding = new
            if not isinstance(projected_address, Unset):
                if binding is not None:
                    participant.binding = replace(binding, projected_address=projected_address)
                else:
                    participant.projected_address = projected_address
            if not isinstance(attributes, Unset):
                participant.attributes = attributes or "{}"
            if not isinstance(role_sid, Unset):
                participant.role_sid = role_sid or None
            if not isinstance(last_read_message_index, Unset):
                participant.last_read_message_index = last_read_message_index
            if not isinstance(last_read_timestamp, Unset):
                participant.last_read_timestamp = last_read_timestamp
            participant.date_updated = self.clock.now()
            self._emit(
                webhook_events.participant_event(
                    self.account_sid, "onParticipantUpdated", conversation, participant, origin
                )
            )
            return copy.copy(participant)

    def remove_participant(
        self, service_sid: str, key: str, participant_key: str, *, origin: Origin
    ) -> None:
        """Removing an SMS or WhatsApp participant releases its pair."""
        with self.lock:
            conversation = self._conversation(service_sid, key)
            participant = self._participant(conversation, participant_key)
            if conversation.state == CLOSED:
                raise ConversationClosed()
            del conversation.participants[participant.sid]
            if participant.binding and self._holders.get(participant.binding.pair) == (
                conversation.sid
            ):
                del self._holders[participant.binding.pair]
            self._unindex(participant)
            self._emit(
                webhook_events.participant_event(
                    self.account_sid,
                    "onParticipantRemoved",
                    conversation,
                    participant,
                    origin,
                    removed_at=self.clock.now(),
                )
            )

    def participant_conversations(
        self, service_sid: str, *, address: str | None = None, identity: str | None = None
    ) -> list[tuple[Participant, Conversation]]:
        """Every (participant, conversation) of the service where the address or identity is a
        participant, in the order the participants were added; closed conversations included."""
        with self.lock:
            self._service(service_sid)
            if address is not None:
                found = self._by_address.get(address, {}).values()
            else:
                found = self._by_identity.get((service_sid, identity or ""), {}).values()
            return [
                (copy.copy(p), self._live(p.conversation_sid).snapshot())
                for p in sorted(found, key=lambda p: p.seq)
                if p.service_sid == service_sid
            ]

    def _participant(self, conversation: Conversation, key: str) -> Participant:
        participant = conversation.participants.get(key)
        if participant is None:
            participant = next(
                (p for p in conversation.participants.values() if p.identity and p.identity == key),
                None,
            )
        if participant is None:
            raise NotFound(
                f"The requested resource /Conversations/{conversation.sid}/Participants/{key} "
                "was not found"
            )
        return participant

    def _index(self, participant: Participant) -> None:
        if participant.binding:
            self._by_address.setdefault(participant.binding.address, {})[participant.sid] = (
                participant
            )
        if participant.identity:
            key = (participant.service_sid, participant.identity)
            self._by_identity.setdefault(key, {})[participant.sid] = participant

    def _unindex(self, participant: Participant) -> None:
        if participant.binding:
            self._by_address.get(participant.binding.address, {}).pop(participant.sid, None)
        if participant.identity:
            key = (participant.service_sid, participant.identity)
            self._by_identity.get(key, {}).pop(participant.sid, None)

    def _user_sid(self, service_sid: str, identity: str | None) -> str | None:
        if not identity:
            return None
        return self._users.setdefault((service_sid, identity), new_sid("US"))

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
            conversation = self._conversation(service_sid, key)
            return self._add_message(conversation, author, body, attributes, origin)

    def _add_message(
        self,
        conversation: Conversation,
        author: str | None,
        body: str | None,
        attributes: str | None,
        origin: Origin,
    ) -> Message:
        if conversation.state == CLOSED:
            raise ConversationClosed()
        author = author or "system"
        participant_sid = next(
            (
                p.sid
                for p in conversation.participants.values()
                if p.identity == author or (p.binding and p.binding.address == author)
            ),
            None,
        )
        now = self.clock.now()
        message = Message(
            sid=new_sid("IM"),
            conversation_sid=conversation.sid,
            service_sid=conversation.service_sid,
            seq=next(self._seq),
            index=conversation.next_index,
            author=author,
            body=body,
            attributes=attributes or "{}",
            participant_sid=participant_sid,
            date_created=now,
            date_updated=now,
        )
        conversation.next_index += 1
        conversation.messages.append(message)
        conversation.date_updated = now
        if conversation.state == INACTIVE:
            # A new message turns an inactive conversation active again.
            self._set_state(conversation, ACTIVE, now)
            self._emit(
                webhook_events.state_updated(
                    self.account_sid, conversation, INACTIVE, webhook_events.REASON_EVENT, origin
                )
            )
        self._arm_timers(conversation, now)
        self._emit(
            webhook_events.message_event(
                self.account_sid, "onMessageAdded", conversation, message, origin
            )
        )
        return message

    def get_message(self, service_sid: str, key: str, message_key: str) -> Message:
        with self.lock:
            conversation = self._conversation(service_sid, key)
            for message in conversation.messages:
                if message.sid == message_key:
                    return message
            raise NotFound(
                f"The requested resource /Conversations/{conversation.sid}/Messages/{message_key} "
                "was not found"
            )

    def list_messages(self, service_sid: str, key: str) -> list[Message]:
        with self.lock:
            return list(self._conversation(service_sid, key).messages)

    # -- inbound ------------------------------------------------------------------------------

    def receive_inbound(
        self,
        address: str,
        proxy_address: str,
        *,
        body: str | None,
        author: str | None = None,
        attributes: str | None = None,
        friendly_name: str | None = None,
        origin: Origin,
    ) -> InboundResult:
        """An inbound message from `address` to `proxy_address`, routed or autocreated atomically.

        Routed to the conversation holding the pair; when none does, a conversation is created
        in the default service with the sender as its SMS participant. Autocreation fires
        onConversationAdded, onParticipantAdded and onMessageAdded (no onParticipantAdd or
        onMessageAdd).
        """
        spec = ParticipantSpec(address=address, proxy_address=proxy_address)
        spec.validate()
        with self.lock:
            holder = self._holders.get((address, proxy_address))
            if holder is not None:
                conversation = self._live(holder)
                message = self._add_message(
                    conversation, author or address, body, attributes, origin
                )
                return InboundResult(conversation.snapshot(), None, message, created=False)
            conversation = self._create_conversation(
                self.default_service_sid,
                friendly_name=friendly_name,
                unique_name=None,
                attributes=None,
                messaging_service_sid=None,
                state=ACTIVE,
                timer_inactive=None,
                timer_closed=None,
                created_by="system",
            )
            participant = self._add_participant(conversation, spec)
            self._emit_conversation(
                "onConversationAdded", conversation, origin, binding_of=participant
            )
            self._emit(
                webhook_events.participant_event(
                    self.account_sid, "onParticipantAdded", conversation, participant, origin
                )
            )
            message = self._add_message(conversation, author or address, body, attributes, origin)
            return InboundResult(
                conversation.snapshot(), copy.copy(participant), message, created=True
            )

    # -- events -------------------------------------------------------------------------------

    def _emit_conversation(
        self,
        event_type: str,
        conversation: Conversation,
        origin: Origin,
        *,
        removed_at: datetime | None = None,
        binding_of: Participant | None = None,
    ) -> None:
        self._emit(
            webhook_events.conversation_event(
                self.account_sid,
                event_type,
                conversation,
                origin,
                removed_at=removed_at,
                binding_of=binding_of,
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
                "conversations": len(self._conversation_service),
                "bindings": len(self._holders),
            }


def _check_state(state: str) -> str:
    if state not in STATES:
        raise InvalidParameter(f"State: {state!r} must be one of active, inactive, closed")
    return state


def _timer(text: str | None, name: str, minimum_seconds: int) -> timedelta | None:
    if not text:
        return None
    duration = parse_duration(text, name)
    if duration.total_seconds() < minimum_seconds:
        raise InvalidParameter(f"{name}: {text!r} is shorter than {minimum_seconds} seconds")
    return duration
