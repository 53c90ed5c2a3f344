"""Changing a conversation's state: ordered by event time, idempotent, closed is final.

A request carries the time it was made (`at`). Under the conversation's lock: a conversation the
ledger knows to be closed is never written to again (so no 50377); an active/inactive request older
than the state the ledger holds is superseded (a late `active` never undoes a newer `inactive`);
closing is never superseded, since it is final and idempotent. Twilio is re-read before the write, so
a change Twilio already made is not made twice.
"""

from __future__ import annotations

import logging

from workers import keys
from workers.gateway import Permanent
from workers.runtime import Runtime

log = logging.getLogger(__name__)

STATES = ("active", "inactive", "closed")
CONVERSATION_CLOSED = 50377


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
        if state != "closed" and record.known and at < record.state_at:
            return {**answer, "outcome": "superseded", "current": record.state}
        current = rt.gateway.fetch_conversation(conversation_sid)
        if current.state == "closed":
            rt.ledger.set_state(conversation_sid, "closed", max(at, current.date_updated))
            return {**answer, "outcome": "unchanged", "current": "closed"}
        if current.state != state:
            locks.refresh()
            try:
                rt.gateway.set_state(conversation_sid, state)
            except Permanent as error:
                if error.code != CONVERSATION_CLOSED:
                    raise
                rt.ledger.set_state(conversation_sid, "closed", at)
                return {**answer, "outcome": "unchanged", "current": "closed"}
        rt.ledger.set_state(conversation_sid, state, at)
        log.info("conversation %s is %s (%s)", conversation_sid, state, reason)
        outcome = "changed" if current.state != state else "unchanged"
        return {**answer, "outcome": outcome, "current": state}
