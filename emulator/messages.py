"""Messages: adding one (which turns an inactive conversation active and re-arms its timers),
and reading them in either order."""

from __future__ import annotations

from collections.abc import Iterator

from emulator import webhook_events
from emulator.clock import TimeSource
from emulator.conversations import Conversations
from emulator.errors import ConversationClosed, InvalidParameter, NotFound
from emulator.paging import Listing
from emulator.records import ACTIVE, CLOSED, INACTIVE, Conversation, Message
from emulator.sids import new_sid
from emulator.states import States
from emulator.webhook_events import Origin

ORDERS = ("asc", "desc")


def check_order(order: str) -> str:
    """`asc` or `desc`, in any case (Twilio's description has `DeSc` among its examples)."""
    if order.lower() not in ORDERS:
        raise InvalidParameter(f"Order: {order!r} must be asc or desc")
    return order.lower()


class Messages:
    """Called by the Store with its lock held. `add` fires the state change a message causes;
    the Store fires onMessageAdded."""

    def __init__(
        self,
        conversations: Conversations,
        states: States,
        clock: TimeSource,
        seq: Iterator[int],
    ) -> None:
        self._conversations = conversations
        self._states = states
        self._clock = clock
        self._seq = seq

    def add(
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
        now = self._clock.now()
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
        self._conversations.touch(conversation, "message", now)
        if conversation.state == INACTIVE:
            # A new message turns an inactive conversation active again.
            self._states.move(conversation, ACTIVE, now)
            self._states.announce(conversation, INACTIVE, webhook_events.REASON_EVENT, origin)
        self._states.arm(conversation, now)
        return message

    def get(self, conversation: Conversation, message_sid: str) -> Message:
        for message in conversation.messages:
            if message.sid == message_sid:
                return message
        raise NotFound(
            f"The requested resource /Conversations/{conversation.sid}/Messages/{message_sid} "
            "was not found"
        )

    def in_order(self, conversation: Conversation, order: str = "asc") -> list[Message]:
        """The conversation's messages, oldest first (`asc`) or newest first (`desc`)."""
        found = list(conversation.messages)
        if check_order(order) == "desc":
            found.reverse()
        return found

    def listing(self, conversation: Conversation, order: str = "asc") -> Listing[Message]:
        """The conversation's messages in `order`, to page through (the live list: the lock's
        holder only)."""
        return Listing(conversation.messages, _seq, descending=check_order(order) == "desc")


def _seq(message: Message) -> int:
    return message.seq
