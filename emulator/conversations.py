"""Conversations: where each one lives (its service), how it is found (SID or unique name), the
fields a REST update changes, and what bumps date_updated. States and timers are `states.py`'s;
participants and messages have modules of their own.

Each service's conversations are also kept in creation (`seq`) order, all of them and those of
each state, so that a page of a list (`listing`) costs the page, not the service's size."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime, timedelta

from emulator.clock import TimeSource
from emulator.defaults import DATE_UPDATED_ON
from emulator.errors import ConversationNotFound, UniqueNameTaken
from emulator.in_seq_order import InSeqOrder
from emulator.paging import Listing
from emulator.records import ACTIVE, UNSET, Conversation, Unset
from emulator.services import Services
from emulator.sids import new_sid

DATE_UPDATED_CAUSES = ("update", "state", "message", "participant")
"""What may bump a conversation's date_updated: a REST update of the conversation (with or
without changes), a state change (REST, timer, or a message reactivating it), a message added,
a participant added, updated or removed. Twilio documents only the first; which of the others
do is `EmulatorConfig.date_updated_on`."""


def check_causes(causes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [c for c in causes if c not in DATE_UPDATED_CAUSES]
    if unknown:
        raise ValueError(
            f"unknown date_updated cause(s) {', '.join(unknown)}: "
            f"choose from {', '.join(DATE_UPDATED_CAUSES)}"
        )
    return tuple(causes)


class Conversations:
    """Every conversation of the account, by service and by SID, and the unique names (unique
    per service). Called by the Store with its lock held; hands out live records."""

    def __init__(
        self,
        services: Services,
        clock: TimeSource,
        seq: Iterator[int],
        messaging_service_sid: str,
        date_updated_on: tuple[str, ...] = DATE_UPDATED_ON,
    ) -> None:
        self._date_updated_on = frozenset(check_causes(date_updated_on))
        self._services = services
        self._clock = clock
        self._seq = seq
        self._messaging_service_sid = messaging_service_sid
        self._by_service: dict[str, dict[str, Conversation]] = {}
        self._service_of: dict[str, str] = {}
        self._unique_names: dict[tuple[str, str], str] = {}
        self._in_order: dict[str, InSeqOrder[Conversation]] = {}
        self._in_state: dict[tuple[str, str], InSeqOrder[Conversation]] = {}
        self._dates_out_of_order: set[str] = set()
        """Services with a conversation created earlier (by the clock) than one before it (a
        test's clock may go back): their date filters cannot bisect."""

    def create(
        self,
        service_sid: str,
        *,
        friendly_name: str | None = None,
        unique_name: str | None = None,
        attributes: str | None = None,
        messaging_service_sid: str | None = None,
        state: str = ACTIVE,
        timer_inactive: timedelta | None = None,
        timer_closed: timedelta | None = None,
        created_by: str | None = "system",
    ) -> Conversation:
        """A new conversation in the service, its unique name claimed (its timers not armed)."""
        self._services.get(service_sid)
        if unique_name:
            self._claim(service_sid, unique_name, None)
        now = self._clock.now()
        conversation = Conversation(
            sid=new_sid("CH"),
            service_sid=service_sid,
            seq=next(self._seq),
            friendly_name=friendly_name,
            unique_name=unique_name or None,
            attributes=attributes or "{}",
            messaging_service_sid=messaging_service_sid or self._messaging_service_sid,
            state=state,
            date_created=now,
            date_updated=now,
            created_by=created_by,
            timer_inactive=timer_inactive,
            timer_closed=timer_closed,
        )
        if unique_name:
            self._unique_names[(service_sid, unique_name)] = conversation.sid
        self._by_service.setdefault(service_sid, {})[conversation.sid] = conversation
        self._service_of[conversation.sid] = service_sid
        in_order = self._in_order.setdefault(service_sid, InSeqOrder())
        if in_order.items and now < in_order.items[-1].date_created:
            self._dates_out_of_order.add(service_sid)
        in_order.add(conversation)
        self._in_state.setdefault((service_sid, state), InSeqOrder()).add(conversation)
        return conversation

    def draft(self, service_sid: str) -> Conversation:
        """The conversation an autocreation would make, as its pre-event describes it: no SID."""
        now = self._clock.now()
        return Conversation(
            sid="",
            service_sid=service_sid,
            seq=0,
            friendly_name=None,
            unique_name=None,
            attributes="{}",
            messaging_service_sid=self._messaging_service_sid,
            state=ACTIVE,
            date_created=now,
            date_updated=now,
            created_by="system",
        )

    def get(self, service_sid: str, key: str) -> Conversation:
        """By CH SID or by UniqueName, within the service; 20404 for an unknown service."""
        self._services.get(service_sid)
        conversations = self._by_service.get(service_sid, {})
        conversation = conversations.get(key)
        if conversation is None:
            sid = self._unique_names.get((service_sid, key))
            conversation = conversations.get(sid) if sid else None
        if conversation is None:
            raise ConversationNotFound(f"Conversation {key} not found")
        return conversation

    def find(self, conversation_sid: str) -> Conversation:
        """By CH SID in any service."""
        service_sid = self._service_of.get(conversation_sid)
        if service_sid is None:
            raise ConversationNotFound(f"Conversation {conversation_sid} not found")
        return self._by_service[service_sid][conversation_sid]

    def exists(self, conversation_sid: str) -> bool:
        return conversation_sid in self._service_of

    def in_service(
        self,
        service_sid: str,
        *,
        state: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Conversation]:
        """The service's conversations in creation order, filtered by state and creation date."""
        listing = self.listing(service_sid, state=state, start=start, end=end)
        return listing.after(None, len(listing.items))

    def listing(
        self,
        service_sid: str,
        *,
        state: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Listing[Conversation]:
        """The service's conversations in creation order, in `state` (None: any), created at or
        after `start` and before `end` (None: unbounded): live records, for the lock's holder
        to page through. 20404 for an unknown service."""
        self._services.get(service_sid)
        in_order = (
            self._in_order.get(service_sid)
            if not state
            else self._in_state.get((service_sid, state))
        )
        items = in_order.items if in_order is not None else []
        if not start and not end:
            return Listing(items, _seq)
        if service_sid in self._dates_out_of_order:

            def created_within(c: Conversation) -> bool:
                return (not start or c.date_created >= start) and (not end or c.date_created < end)

            return Listing(items, _seq, keep=created_within)
        lo = bisect_left(items, start, key=_created) if start else 0
        hi = bisect_left(items, end, key=_created) if end else len(items)
        return Listing(items, _seq, lo=lo, hi=max(lo, hi))

    def set_state(self, conversation: Conversation, state: str) -> None:
        """Move the conversation to `state` (the rules of a move are `states.py`'s)."""
        if state == conversation.state:
            return
        self._in_state[(conversation.service_sid, conversation.state)].remove(conversation)
        conversation.state = state
        self._in_state.setdefault((conversation.service_sid, state), InSeqOrder()).add(conversation)

    def change(
        self,
        conversation: Conversation,
        *,
        friendly_name: str | None | Unset = UNSET,
        unique_name: str | None | Unset = UNSET,
        attributes: str | None | Unset = UNSET,
        messaging_service_sid: str | None | Unset = UNSET,
    ) -> None:
        """Apply the given fields of a REST update (a unique name is claimed first)."""
        if not isinstance(unique_name, Unset) and unique_name != conversation.unique_name:
            key = (conversation.service_sid, unique_name or "")
            if unique_name:
                self._claim(conversation.service_sid, unique_name, conversation.sid)
                self._unique_names[key] = conversation.sid
            if conversation.unique_name:
                del self._unique_names[(conversation.service_sid, conversation.unique_name)]
            conversation.unique_name = unique_name or None
        if not isinstance(friendly_name, Unset):
            conversation.friendly_name = friendly_name
        if not isinstance(attributes, Unset):
            conversation.attributes = attributes or "{}"
        if not isinstance(messaging_service_sid, Unset) and messaging_service_sid:
            conversation.messaging_service_sid = messaging_service_sid

    def touch(self, conversation: Conversation, cause: str, when: datetime) -> None:
        """Bump date_updated to `when` if `cause` is one of those configured to."""
        if cause in self._date_updated_on:
            conversation.date_updated = when

    def remove(self, conversation: Conversation) -> None:
        """Forget the conversation and free its unique name."""
        if conversation.unique_name:
            del self._unique_names[(conversation.service_sid, conversation.unique_name)]
        del self._by_service[conversation.service_sid][conversation.sid]
        del self._service_of[conversation.sid]
        self._in_order[conversation.service_sid].remove(conversation)
        self._in_state[(conversation.service_sid, conversation.state)].remove(conversation)

    def __len__(self) -> int:
        return len(self._service_of)

    def _claim(self, service_sid: str, name: str, owner: str | None) -> None:
        holder = self._unique_names.get((service_sid, name))
        if holder is not None and holder != owner:
            raise UniqueNameTaken(f"Conversation with unique name {name!r} already exists")


def _seq(conversation: Conversation) -> int:
    return conversation.seq


def _created(conversation: Conversation) -> datetime:
    return conversation.date_created
