"""Participants: what an add asks for (`ParticipantSpec`) and Twilio's rules for adding, updating
and removing one; where an address or identity takes part (ParticipantConversations).

The kinds of participant:
- chat: an Identity, and a ProjectedAddress (the Twilio number it appears as) in a Group MMS;
- a pair: an Address and a ProxyAddress of one channel, bound by the binding rule (50416);
- Group MMS (SMS only, +1 numbers in Twilio): an Address and no ProxyAddress parameter at all (an
  empty ProxyAddress is 50412, as before), or a ProjectedAddress alone (an unattached Twilio
  number of the group).

A conversation with an address-only participant is a Group MMS conversation: a chat participant
added to it needs a ProjectedAddress (50434). An address-only participant holds no pair, so it
never meets nor causes 50416, and the same address may be one in any number of conversations;
only the same address twice in one conversation is refused (50437, "a native GMMS participant
with the same Address"). Twilio documents no binding rule for Group MMS; this is the emulator's
reading. What makes a group valid for delivery (50435: three or more bound participants, ...)
is not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from emulator import channels
from emulator.binding_index import BindingIndex
from emulator.channels import Binding
from emulator.clock import TimeSource
from emulator.conversations import Conversations
from emulator.errors import (
    AddressEmpty,
    BindingInConversation,
    ConversationClosed,
    IdentityInConversation,
    InvalidParameter,
    NotFound,
    ProjectedAddressMissing,
    ProxyAddressEmpty,
)
from emulator.paging import Listing
from emulator.records import CLOSED, UNSET, Conversation, Participant, Unset
from emulator.sids import new_sid


@dataclass(frozen=True)
class ParticipantSpec:
    """What a participant add asks for, before any rule is checked."""

    identity: str | None = None
    address: str | None = None
    proxy_address: str | None = None
    """None: the request had no ProxyAddress (a Group MMS participant); "": it had an empty one."""
    projected_address: str | None = None
    attributes: str | None = None
    role_sid: str | None = None

    def validate(self) -> Binding | None:
        """The binding of a non-chat participant, None for a chat one or a projected address
        alone; raises the Twilio error of a bad spec."""
        if self.identity:
            if self.address or self.proxy_address:
                raise InvalidParameter(
                    "A participant has either an Identity (chat) or a MessagingBinding.Address "
                    "and MessagingBinding.ProxyAddress (SMS, WhatsApp, ...), not both"
                )
            return None
        if not self.address and not self.proxy_address:
            if self.projected_address:
                return None
            raise AddressEmpty(
                "Identity not provided and MessagingBinding.Address is empty: a participant "
                "needs one of them"
            )
        if self.address and self.proxy_address is None:
            if channels.validate_address(self.address) != channels.SMS:
                raise ProxyAddressEmpty(
                    "MessagingBinding.ProxyAddress is empty: only an SMS address joins a "
                    "conversation without one (Group MMS)"
                )
            return Binding(channels.SMS, self.address, None, self.projected_address)
        channel = channels.validate_pair(self.address, self.proxy_address)
        assert self.address and self.proxy_address  # validate_pair() raised otherwise
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


class Participants:
    """The rules of each participant change, checked and applied in one go. Called by the Store
    with its lock held; hands out live records and fires no webhook (the Store does)."""

    def __init__(
        self,
        conversations: Conversations,
        index: BindingIndex,
        clock: TimeSource,
        seq: Iterator[int],
    ) -> None:
        self._conversations = conversations
        self._index = index
        self._clock = clock
        self._seq = seq

    def add(self, conversation: Conversation, spec: ParticipantSpec) -> Participant:
        if conversation.state == CLOSED:
            raise ConversationClosed()
        binding = spec.validate()
        present = conversation.participants.values()
        if binding is None and spec.identity:
            if any(p.identity == spec.identity for p in present):
                raise IdentityInConversation()
            if not spec.projected_address and is_group_mms(conversation):
                raise ProjectedAddressMissing()
        elif binding is None:
            if any(p.projected_address == spec.projected_address for p in present):
                raise BindingInConversation(
                    "Participant with this projected address already exists in the Conversation"
                )
        elif binding.pair:
            self._index.check_free(conversation.sid, binding.pair)
        elif any(_group_address(p) == binding.address for p in present):
            raise BindingInConversation(
                "A Group MMS participant with this address already exists in the Conversation"
            )
        now = self._clock.now()
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
            user_sid=self._index.user_sid(conversation.service_sid, spec.identity),
            date_created=now,
            date_updated=now,
        )
        conversation.participants[participant.sid] = participant
        if binding is not None and binding.pair:
            self._index.hold(binding.pair, conversation.sid)
        self._index.add(participant)
        self._conversations.touch(conversation, "participant", now)
        return participant

    def get(self, conversation: Conversation, key: str) -> Participant:
        """By MB SID or by identity."""
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

    def holding(self, conversation: Conversation, pair: tuple[str, str]) -> Participant:
        """The participant through which the conversation holds the pair."""
        return next(
            p for p in conversation.participants.values() if p.binding and p.binding.pair == pair
        )

    def update(
        self,
        conversation: Conversation,
        participant: Participant,
        *,
        attributes: str | None | Unset = UNSET,
        role_sid: str | None | Unset = UNSET,
        identity: str | None | Unset = UNSET,
        proxy_address: str | None | Unset = UNSET,
        projected_address: str | None | Unset = UNSET,
        last_read_message_index: int | None | Unset = UNSET,
        last_read_timestamp: str | None | Unset = UNSET,
    ) -> None:
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
            self._index.remove(participant)
            participant.identity = identity
            participant.user_sid = self._index.user_sid(conversation.service_sid, identity)
            self._index.add(participant)
        moves_pair = binding is not None and proxy_address != binding.proxy_address
        if not isinstance(proxy_address, Unset) and binding is not None and moves_pair:
            # A Group MMS participant given a proxy address becomes a pair like any other.
            channel = channels.validate_pair(binding.address, proxy_address)
            assert proxy_address
            moved = replace(binding, type=channel, proxy_address=proxy_address)
            assert moved.pair
            self._index.check_free(conversation.sid, moved.pair)
            if binding.pair:
                self._index.release(binding.pair, conversation.sid)
            self._index.hold(moved.pair, conversation.sid)
            participant.binding = binding = moved
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
        participant.date_updated = self._clock.now()
        self._conversations.touch(conversation, "participant", participant.date_updated)

    def remove(self, conversation: Conversation, participant: Participant) -> None:
        """Removing an SMS or WhatsApp participant releases its pair."""
        if conversation.state == CLOSED:
            raise ConversationClosed()
        del conversation.participants[participant.sid]
        if participant.binding and participant.binding.pair:
            self._index.release(participant.binding.pair, conversation.sid)
        self._index.remove(participant)
        self._conversations.touch(conversation, "participant", self._clock.now())

    def forget(self, conversation: Conversation) -> None:
        """A deleted conversation's participants: their pairs released, their index entries gone."""
        self._index.release_all(conversation)
        for participant in conversation.participants.values():
            self._index.remove(participant)

    def where(
        self, service_sid: str, *, address: str | None = None, identity: str | None = None
    ) -> list[tuple[Participant, Conversation]]:
        """Every (participant, conversation) of the service where the address or identity is a
        participant, in the order the participants were added; closed conversations included."""
        listing = self.listing(service_sid, address=address, identity=identity)
        return [(p, self.conversation_of(p)) for p in listing.after(None, len(listing.items))]

    def listing(
        self, service_sid: str, *, address: str | None = None, identity: str | None = None
    ) -> Listing[Participant]:
        """The participants of `where`, to page through (`conversation_of` gives each one's
        conversation, for the page's only)."""
        if address is not None:
            found = self._index.of_address(address)
        else:
            found = self._index.of_identity(service_sid, identity or "")
        found.sort(key=_seq)

        def in_service(participant: Participant) -> bool:
            return participant.service_sid == service_sid

        return Listing(found, _seq, keep=in_service)

    def conversation_of(self, participant: Participant) -> Conversation:
        return self._conversations.find(participant.conversation_sid)


def is_group_mms(conversation: Conversation) -> bool:
    """Whether the conversation has a Group MMS participant (an address and no proxy address)."""
    return any(_group_address(p) for p in conversation.participants.values())


def _group_address(participant: Participant) -> str | None:
    """The address of a Group MMS participant, None for any other."""
    binding = participant.binding
    return binding.address if binding is not None and binding.proxy_address is None else None


def _seq(participant: Participant) -> int:
    return participant.seq
