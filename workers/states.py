"""Conversation states, and changing one: ordered against the ledger and against Twilio's own time,
idempotent, closed is final.

A request carries the time it was made (`at`, on Twilio's clock). Under the conversation's lock:
a conversation the ledger knows to be closed is never written to again (so no 50377); an active or
inactive request older than the state the ledger holds, or older than Twilio's last change to the
conversation (`date_updated`, re-read under the lock), is `superseded`, and the answer says which
state and time won; closing is never superseded, since it is final and idempotent. A change Twilio
already made is not made twice.

Twilio's dates have whole seconds: a change Twilio made in the same second as the request does not
supersede it (neither order can be told apart, and the request is the newer intent).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from workers import errors, keys

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


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def change_state(
    rt: Runtime, conversation_sid: str, state: str, at: float, reason: str = "api"
) -> dict:
    answer = {"conversation_sid": conversation_sid, "state": state}
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(conversation_sid)])
        record = rt.ledger.conversation(conversation_sid)
        if record.final:
            rt.ledger.count("writes_to_closed_avoided")
            return {**answer, "outcome": "unchanged", "current": record.state}
        if state != CLOSED and record.known and at < record.state_at:
            return _superseded(answer, record.state, record.state_at, "ledger")
        try:
            current = rt.twilio.fetch_conversation(conversation_sid, record.service_sid)
        except errors.TwilioRefused as error:
            if error.code not in errors.GONE:
                raise
            rt.ledger.set_state(conversation_sid, REMOVED, rt.clock.now())
            return {**answer, "outcome": "unchanged", "current": REMOVED}
        if current.state == CLOSED:
            rt.ledger.set_state(conversation_sid, CLOSED, current.date_updated, authoritative=True)
            return {**answer, "outcome": "unchanged", "current": CLOSED}
        if state != CLOSED and current.state != state and current.date_updated > at:
            rt.ledger.set_state(
                conversation_sid, current.state, current.date_updated, authoritative=True
            )
            return _superseded(answer, current.state, current.date_updated, "twilio")
        if current.state == state:
            rt.ledger.set_state(conversation_sid, state, max(at, current.date_updated))
            return {**answer, "outcome": "unchanged", "current": state}
        locks.refresh()
        try:
            updated = rt.twilio.set_state(conversation_sid, state, record.service_sid)
        except errors.TwilioRefused as error:
            if error.code != errors.CONVERSATION_CLOSED:
                raise
            rt.ledger.set_state(conversation_sid, CLOSED, rt.clock.now())
            return {**answer, "outcome": "unchanged", "current": CLOSED}
        rt.ledger.set_state(
            conversation_sid, state, max(at, updated.date_updated), authoritative=True
        )
        log.info("conversation %s is %s (%s)", conversation_sid, state, reason)
        return {**answer, "outcome": "changed", "current": state}


def _superseded(answer: dict, current: str, since: float, decided_by: str) -> dict:
    return {
        **answer,
        "outcome": "superseded",
        "current": current,
        "current_since": iso(since),
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
