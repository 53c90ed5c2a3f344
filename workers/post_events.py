"""What Twilio's post-events teach the ledger, one function per event, named after it.

Each runs as a job under the conversation's lock (and the pair's, for a pair), so ledger writes
never interleave with a participant-add or a state change of the same conversation. `at` is the
event's own time (Twilio's clock), which, with the participant's SID, orders late and repeated
deliveries: see `workers/ledger.py`. A post-event only records what Twilio says happened; it never
acts on Twilio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers import job_catalog, keys, sessions, timers, waiters
from workers.states import ACTIVE, CLOSED, REMOVED

if TYPE_CHECKING:
    from workers.locks import Locks
    from workers.runtime import Runtime


def _locked(rt: Runtime, conversation_sid: str, pair: str = "") -> Locks:
    locks = rt.locks()
    names = [keys.conversation_lock(conversation_sid)]
    if pair:
        names.append(keys.pair_lock(pair))
    locks.acquire(names, waiter=waiters.current())  # busy: wait in line, not in a worker
    return locks


def _pair(address: str, proxy_address: str) -> str:
    return keys.pair_id(address, proxy_address) if address and proxy_address else ""


def on_conversation_added(
    rt: Runtime,
    conversation_sid: str,
    state: str,
    at: float,
    address: str = "",
    proxy_address: str = "",
    service_sid: str = "",
) -> dict:
    with _locked(rt, conversation_sid):
        rt.ledger.record_conversation(conversation_sid, state or ACTIVE, at, service_sid)
        rt.ledger.touch(conversation_sid, at)
    jobs = []
    for identity in rt.settings.auto_add_identities:
        job, _ = rt.queue.enqueue(
            job_catalog.PARTICIPANT_ADD,
            {"conversation_sid": conversation_sid, "identity": identity},
            kind="participant-add",
            job_id=job_catalog.auto_add_job_id(conversation_sid, identity),
        )
        jobs.append(job.id)
    return {"outcome": "recorded", "auto_add_jobs": jobs}


def on_participant_added(
    rt: Runtime,
    conversation_sid: str,
    at: float,
    participant_sid: str = "",
    identity: str = "",
    address: str = "",
    proxy_address: str = "",
    service_sid: str = "",
) -> dict:
    pair = _pair(address, proxy_address)
    with _locked(rt, conversation_sid, pair):
        ledger = rt.ledger
        ledger.record_conversation(conversation_sid, ACTIVE, at, service_sid)
        ledger.touch(conversation_sid, at)
        result = "ok"
        if pair:
            result = ledger.bind(pair, conversation_sid, participant_sid, at)
        elif identity:
            result = ledger.member_added(conversation_sid, identity, participant_sid, at)
    return {"outcome": "recorded" if result == "ok" else "superseded"}


def on_participant_removed(
    rt: Runtime,
    conversation_sid: str,
    at: float,
    participant_sid: str = "",
    identity: str = "",
    address: str = "",
    proxy_address: str = "",
    service_sid: str = "",
) -> dict:
    pair = _pair(address, proxy_address)
    with _locked(rt, conversation_sid, pair):
        result = "ok"
        if pair:
            result = rt.ledger.release(pair, conversation_sid, at, participant_sid)
        elif identity:
            result = rt.ledger.member_removed(conversation_sid, identity, participant_sid, at)
    return {"outcome": "recorded" if result == "ok" else "superseded"}


def on_conversation_state_updated(
    rt: Runtime, conversation_sid: str, state: str, at: float, service_sid: str = ""
) -> dict:
    with _locked(rt, conversation_sid):
        if service_sid:
            rt.ledger.record_conversation(conversation_sid, state, at, service_sid)
        applied = rt.ledger.set_state(conversation_sid, state, at)
    if applied:
        timers.schedule_close_if_inactive(rt, conversation_sid, state, at)
    if state == CLOSED:  # applied or already known: a session of the conversation ends with it
        sessions.conversation_ended(rt, conversation_sid)
    return {"outcome": "recorded" if applied else "superseded", "state": state}


def on_conversation_removed(rt: Runtime, conversation_sid: str, at: float) -> dict:
    with _locked(rt, conversation_sid):
        applied = rt.ledger.set_state(conversation_sid, REMOVED, at)
    sessions.conversation_ended(rt, conversation_sid)
    return {"outcome": "recorded" if applied else "superseded"}


def on_message_added(rt: Runtime, conversation_sid: str, at: float) -> dict:
    # No lock: `touch` is one atomic max() in Redis.
    rt.ledger.touch(conversation_sid, at)
    return {"outcome": "recorded"}


def record_participant(rt: Runtime, change: str, **event) -> dict:
    """Jobs queued before 0.2 carried `change` instead of naming the event."""
    handler = on_participant_added if change == "added" else on_participant_removed
    return handler(rt, **event)
