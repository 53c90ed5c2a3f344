"""Conversation states, and changing one: ordered against the ledger and against Twilio's own time,
idempotent, closed is final.

A request carries the time it was made (`at`, on Twilio's clock; or, from the app's API without an
`at`, the web host's time, turned into Twilio's by the worker, which has just heard Twilio's clock).
Under the conversation's lock:
a conversation the ledger knows to be closed is never written to again (so no 50377); an active or
inactive request older than the state the ledger holds, or older than Twilio's last change to the
conversation (`date_updated`, re-read under the lock), is `superseded`, and the answer says which
state and time won; closing is never superseded, since it is final and idempotent. A change Twilio
already made is not made twice.

Twilio's dates have whole seconds, and its clock is known here to about a second: a change at
Twilio must follow the request by more than a second to supersede it (within that, neither order
can be told apart, and the request is the newer intent). Against the ledger, which keeps requests'
own times, the order is exact.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from workers import errors, keys, waiters
from workers.logs import iso_time

if TYPE_CHECKING:
    from workers.runtime import Runtime

log = logging.getLogger(__name__)

ACTIVE, INACTIVE, CLOSED, REMOVED = "active", "inactive", "closed", "removed"
STATES = (ACTIVE, INACTIVE, CLOSED)
"""The states a conversation can be set to."""
HOLDING_STATES = (ACTIVE, INACTIVE)
"""States in which a conversation holds its pairs (Twilio's rule)."""
FINAL_STATES = (CLOSED, REMOVED)
"""The ledger's final states: closed at Twilio, or deleted."""
CLOCK_TOLERANCE = 1.0
"""Seconds by which Twilio's `date_updated` must follow a request to supersede it: Twilio's dates
have whole seconds, and its clock is known to about a second."""


def find(twilio, sid: str, service_sid: str = ""):
    """Twilio's conversation now, or None when it exists nowhere. Without a service (the ledger
    has not learned it), a conversation missing from the one Bindery works in is looked for in
    every service of the account: a 404 there is not proof it was deleted."""
    try:
        return twilio.fetch_conversation(sid, service_sid)
    except errors.TwilioRefused as error:
        if error.code not in errors.GONE:
            raise
    if service_sid:
        return None
    for other in twilio.services():
        try:
            return twilio.fetch_conversation(sid, other)
        except errors.TwilioRefused as error:
            if error.code not in errors.GONE:
                raise
    return None


def reread(rt: Runtime, sid: str, service_sid: str = ""):
    """Twilio's conversation, read now under its lock (which the caller holds): None when it is
    gone. What Twilio says of a closed or deleted one, the ledger learns (final)."""
    current = find(rt.twilio, sid, service_sid)
    if current is None:
        rt.ledger.set_state(sid, REMOVED, rt.clock.now())
    elif current.state == CLOSED:
        rt.ledger.set_state(sid, CLOSED, current.date_updated, authoritative=True)
    return current


def change_state(
    rt: Runtime,
    conversation_sid: str,
    state: str,
    at: float | None = None,
    reason: str = "api",
    requested_at: float | None = None,
) -> dict:
    """Set the conversation's state as asked at `at` (Twilio's clock), or at `requested_at` (the
    web host's clock, turned into Twilio's here, with the offset the fetch below has just seen)."""
    answer = {"conversation_sid": conversation_sid, "state": state}
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(conversation_sid)], waiter=waiters.current())
        record = rt.ledger.conversation(conversation_sid)
        if record.final:
            rt.ledger.count("writes_to_closed_avoided")
            return {**answer, "outcome": "unchanged", "current": record.state}
        current = reread(rt, conversation_sid, record.service_sid)
        if current is None:
            return {**answer, "outcome": "unchanged", "current": REMOVED}
        if at is None:
            at = rt.clock.from_host(requested_at if requested_at is not None else time.time())
        if state != CLOSED and record.known and at < record.state_at:
            return _superseded(answer, record.state, record.state_at, "ledger")
        if current.state == CLOSED:
            return {**answer, "outcome": "unchanged", "current": CLOSED}
        if (
            state != CLOSED
            and current.state != state
            and current.date_updated > at + CLOCK_TOLERANCE
        ):
            rt.ledger.set_state(
                conversation_sid, current.state, current.date_updated, authoritative=True
            )
            return _superseded(answer, current.state, current.date_updated, "twilio")
        # The ledger keeps the request's own time: requests are ordered among themselves exactly.
        if current.state == state:
            rt.ledger.set_state(conversation_sid, state, at)
            return {**answer, "outcome": "unchanged", "current": state}
        locks.refresh()
        try:
            rt.twilio.set_state(conversation_sid, state, record.service_sid)
        except errors.TwilioRefused as error:
            if error.code != errors.CONVERSATION_CLOSED:
                raise
            rt.ledger.set_state(conversation_sid, CLOSED, rt.clock.now())
            return {**answer, "outcome": "unchanged", "current": CLOSED}
        rt.ledger.set_state(conversation_sid, state, at, authoritative=True)
        log.info("conversation %s is %s (%s)", conversation_sid, state, reason)
        return {**answer, "outcome": "changed", "current": state}


def _superseded(answer: dict, current: str, since: float, decided_by: str) -> dict:
    return {
        **answer,
        "outcome": "superseded",
        "current": current,
        "current_since": iso_time(since),
        "decided_by": decided_by,
    }


def close(rt: Runtime, conversation_sid: str, service_sid: str = "") -> None:
    """Close at Twilio (already closed counts as done) and tell the ledger; the caller holds the
    conversation's lock and has re-checked why it closes."""
    try:
        updated = rt.twilio.set_state(conversation_sid, CLOSED, service_sid)
        when = updated.date_updated
    except errors.TwilioRefused as error:
        if error.code not in (errors.CONVERSATION_CLOSED, *errors.GONE):
            raise
        when = rt.clock.now()
    rt.ledger.set_state(conversation_sid, CLOSED, when, authoritative=True)
