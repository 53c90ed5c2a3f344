"""Conversation states and timers: how a conversation moves between active, inactive and closed,
what closing releases, and the timers that move it on their own.

Closed is final: it releases the conversation's pairs and cancels its timers. A message turns an
inactive conversation active again (`messages.py` asks for that move).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from emulator import webhook_events
from emulator.binding_index import BindingIndex
from emulator.clock import parse_duration
from emulator.conversations import Conversations
from emulator.errors import InvalidParameter
from emulator.records import ACTIVE, CLOSED, INACTIVE, STATES, UNSET, Conversation, Unset
from emulator.webhook_events import Event, Origin


def check_state(state: str) -> str:
    if state not in STATES:
        raise InvalidParameter(f"State: {state!r} must be one of active, inactive, closed")
    return state


def parse_timer(text: str | None, name: str, minimum_seconds: int) -> timedelta | None:
    """`Timers.Inactive` or `Timers.Closed`: an ISO 8601 duration of at least the minimum."""
    if not text:
        return None
    duration = parse_duration(text, name)
    if duration.total_seconds() < minimum_seconds:
        raise InvalidParameter(f"{name}: {text!r} is shorter than {minimum_seconds} seconds")
    return duration


class States:
    """State moves and the timer queue. Called by the Store with its lock held."""

    def __init__(
        self,
        conversations: Conversations,
        bindings: BindingIndex,
        seq: Iterator[int],
        emit: Callable[[Event], None],
        account_sid: str,
    ) -> None:
        self._conversations = conversations
        self._bindings = bindings
        self._seq = seq
        self._emit = emit
        self._account_sid = account_sid
        self._timers: list[tuple[datetime, int, str, str]] = []

    def move(self, conversation: Conversation, state: str, when: datetime) -> None:
        """Put the conversation in `state` at `when` (the caller announces it, in its order)."""
        self._conversations.set_state(conversation, state)
        conversation.date_state_changed = when
        self._conversations.touch(conversation, "state", when)
        if state == CLOSED:
            # Closed is final: the pairs are free for other conversations and no timer remains.
            self._bindings.release_all(conversation)
            conversation.date_inactive = conversation.date_closed = None
        elif state == INACTIVE:
            conversation.date_inactive = None
        else:
            self.arm(conversation, when, only_missing=True)

    def announce(
        self, conversation: Conversation, state_from: str, reason: str, origin: Origin
    ) -> None:
        """Fire onConversationStateUpdated for a move from `state_from`."""
        self._emit(
            webhook_events.state_updated(
                self._account_sid, conversation, state_from, reason, origin
            )
        )

    # -- timers -----------------------------------------------------------------------------

    def set_timers(
        self,
        conversation: Conversation,
        *,
        inactive: timedelta | None | Unset = UNSET,
        closed: timedelta | None | Unset = UNSET,
    ) -> None:
        """New durations (None removes a timer); the dates are set by the next `arm`."""
        if not isinstance(inactive, Unset):
            conversation.timer_inactive = inactive
            conversation.date_inactive = None
        if not isinstance(closed, Unset):
            conversation.timer_closed = closed
            conversation.date_closed = None

    def arm(self, conversation: Conversation, now: datetime, *, only_missing: bool = False) -> None:
        """Set the absolute timer dates from the durations; activity re-arms them from `now`.

        Whether activity resets Twilio's timers is undocumented: the emulator resets both.
        """
        if conversation.state == ACTIVE and conversation.timer_inactive:
            keep = only_missing and conversation.date_inactive
            if not keep:
                conversation.date_inactive = now + conversation.timer_inactive
                self._push(conversation.date_inactive, conversation.sid, INACTIVE)
        if conversation.state != CLOSED and conversation.timer_closed:
            keep = only_missing and conversation.date_closed
            if not keep:
                conversation.date_closed = now + conversation.timer_closed
                self._push(conversation.date_closed, conversation.sid, CLOSED)

    def _push(self, due: datetime, conversation_sid: str, kind: str) -> None:
        heapq.heappush(self._timers, (due, next(self._seq), conversation_sid, kind))

    def fire_due(self, now: datetime) -> int:
        """Move every conversation whose timer is due by `now`; how many moves fired."""
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            due, _, sid, kind = heapq.heappop(self._timers)
            if not self._conversations.exists(sid):
                continue  # deleted since
            conversation = self._conversations.find(sid)
            if kind == INACTIVE:
                if conversation.date_inactive != due or conversation.state != ACTIVE:
                    continue  # re-armed or moved since: a stale entry
            elif conversation.date_closed != due or conversation.state == CLOSED:
                continue
            state_from = conversation.state
            self.move(conversation, kind, max(due, conversation.date_updated))
            self.announce(conversation, state_from, webhook_events.REASON_TIMER, Origin.timer())
            fired += 1
        return fired
