"""The binding index: which conversation holds each (address, proxy address) pair, and where
each address and identity is a participant.

The binding rule is account-wide: one pair, at most one non-closed conversation, whatever its
service. A pair is held from the participant's add until the participant is removed, the
conversation is closed or it is deleted. A Group MMS participant (an address, no proxy address)
holds no pair: the same address may be one in any number of conversations (see participants.py).
"""

from __future__ import annotations

from emulator.errors import BindingInConversation, BindingInUse
from emulator.records import Conversation, Participant
from emulator.sids import new_sid

Pair = tuple[str, str]


class BindingIndex:
    """Pairs and their holders; participants by address and by (service, identity); the user SID
    of each identity. Called by the Store with its lock held."""

    def __init__(self) -> None:
        self._holders: dict[Pair, str] = {}
        self._by_address: dict[str, dict[str, Participant]] = {}
        self._by_identity: dict[tuple[str, str], dict[str, Participant]] = {}
        self._users: dict[tuple[str, str], str] = {}

    # -- pairs ------------------------------------------------------------------------------

    def holder(self, pair: Pair) -> str | None:
        """The SID of the non-closed conversation holding the pair, if one does."""
        return self._holders.get(pair)

    def check_free(self, conversation_sid: str, pair: Pair) -> None:
        """50437 when this conversation holds the pair already, 50416 when another one does."""
        holder = self._holders.get(pair)
        if holder == conversation_sid:
            raise BindingInConversation()
        if holder is not None:
            raise BindingInUse(holder)

    def hold(self, pair: Pair, conversation_sid: str) -> None:
        self._holders[pair] = conversation_sid

    def release(self, pair: Pair, conversation_sid: str) -> None:
        """Free the pair if this conversation holds it (a closed one no longer does)."""
        if self._holders.get(pair) == conversation_sid:
            del self._holders[pair]

    def release_all(self, conversation: Conversation) -> None:
        for participant in conversation.participants.values():
            if participant.binding and participant.binding.pair:
                self.release(participant.binding.pair, conversation.sid)

    def __len__(self) -> int:
        return len(self._holders)

    # -- participants by address and identity -----------------------------------------------

    def add(self, participant: Participant) -> None:
        if participant.binding:
            by_address = self._by_address.setdefault(participant.binding.address, {})
            by_address[participant.sid] = participant
        if participant.identity:
            key = (participant.service_sid, participant.identity)
            self._by_identity.setdefault(key, {})[participant.sid] = participant

    def remove(self, participant: Participant) -> None:
        if participant.binding:
            self._by_address.get(participant.binding.address, {}).pop(participant.sid, None)
        if participant.identity:
            key = (participant.service_sid, participant.identity)
            self._by_identity.get(key, {}).pop(participant.sid, None)

    def of_address(self, address: str) -> list[Participant]:
        return list(self._by_address.get(address, {}).values())

    def of_identity(self, service_sid: str, identity: str) -> list[Participant]:
        return list(self._by_identity.get((service_sid, identity), {}).values())

    def user_sid(self, service_sid: str, identity: str | None) -> str | None:
        """The Conversation User of an identity (created on first use), None for no identity."""
        if not identity:
            return None
        return self._users.setdefault((service_sid, identity), new_sid("US"))
