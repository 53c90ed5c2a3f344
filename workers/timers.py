"""Bindery's own inactivity timer: close a conversation `BINDERY_CLOSE_INACTIVE_AFTER` after it
turned inactive, if it still is and nothing happened in it since.

The close job is scheduled when the ledger learns the conversation turned inactive, one job per
inactive period (its id carries the moment), however often the event is delivered. When it runs it
re-reads the facts under the conversation's lock: the ledger must still say inactive since that
moment, Twilio must still say inactive, and Twilio's facts (its `date_updated`, the newest message)
must show no activity for the whole delay. Otherwise it is `cancelled`, with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers import job_catalog, keys, staleness, waiters
from workers.states import CLOSED, INACTIVE, REMOVED, close, reread

if TYPE_CHECKING:
    from workers.runtime import Runtime


def schedule_close_if_inactive(rt: Runtime, conversation_sid: str, state: str, at: float) -> None:
    """Inactive since `at`: enqueue its close, `BINDERY_CLOSE_INACTIVE_AFTER` later (0: never)."""
    delay = rt.settings.close_inactive_after
    if delay <= 0 or state != INACTIVE:
        return
    rt.queue.enqueue(
        job_catalog.CLOSE_IF_INACTIVE,
        {"conversation_sid": conversation_sid, "inactive_since": at},
        kind="close-inactive",
        job_id=job_catalog.close_inactive_job_id(conversation_sid, at),
        delay=delay,
    )


def close_if_inactive(rt: Runtime, conversation_sid: str, inactive_since: float) -> dict:
    answer = {"conversation_sid": conversation_sid}
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(conversation_sid)], waiter=waiters.current())
        record = rt.ledger.conversation(conversation_sid)
        if record.state != INACTIVE or record.state_at != inactive_since:
            reason = f"the ledger says {record.state or 'unknown'} since then"
            return {**answer, "outcome": "cancelled", "current": record.state, "reason": reason}
        current = reread(rt, conversation_sid, record.service_sid)
        if current is None:
            return {**answer, "outcome": "cancelled", "current": REMOVED, "reason": "deleted"}
        if current.state != INACTIVE:
            rt.ledger.set_state(
                conversation_sid, current.state, current.date_updated, authoritative=True
            )
            reason = f"Twilio says {current.state}"
            return {**answer, "outcome": "cancelled", "current": current.state, "reason": reason}
        last_message = rt.twilio.last_message_at(conversation_sid, record.service_sid)
        verdict = staleness.judge(
            rt.clock.now(),
            rt.settings.close_inactive_after,
            twilio=current,
            last_message_at=last_message,
            ledger=record,
        )
        if not verdict.stale:
            return {**answer, "outcome": "cancelled", "current": INACTIVE, "reason": verdict.reason}
        locks.refresh()
        close(rt, conversation_sid, record.service_sid)
        return {**answer, "outcome": "changed", "current": CLOSED, "reason": verdict.reason}
