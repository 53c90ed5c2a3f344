"""What Twilio's post-events teach the ledger, and the timers they start.

Each function runs as a job under the conversation's lock, so ledger writes never interleave with a
participant-add or state-change on the same conversation. `at` is the event's own time (Twilio's
clock), which is what orders late and repeated deliveries.
"""

from __future__ import annotations

import logging

from workers import keys
from workers.dispatch import stable_id
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def _locked(rt: Runtime, conversation_sid: str, pair: str = ""):
    locks = rt.locks()
    names = [keys.conversation_lock(conversation_sid)]
    if pair:
        names.append(keys.pair_lock(pair))
    locks.acquire(names)
    return locks


def conversation_added(
    rt: Runtime,
    conversation_sid: str,
    state: str,
    at: float,
    address: str = "",
    proxy_address: str = "",
) -> dict:
    with _locked(rt, conversation_sid):
        rt.ledger.record_conversation(conversation_sid, state or "active", at)
        rt.ledger.touch(conversation_sid, at)
    jobs = []
    for identity in rt.settings.auto_add_identities:
        job, _ = rt.dispatcher.enqueue(
            "workers.jobs.participant_add",
            {"conversation_sid": conversation_sid, "identity": identity},
            kind="participant-add",
            job_id=stable_id("auto-add", conversation_sid, identity),
        )
        jobs.append(job.id)
    return {"outcome": "recorded", "auto_add_jobs": jobs}


def participant_changed(
    rt: Runtime,
    conversation_sid: str,
    change: str,
    at: float,
    participant_sid: str = "",
    identity: str = "",
    address: str = "",
    proxy_address: str = "",
) -> dict:
    pair = keys.pair_id(address, proxy_address) if address and proxy_address else ""
    with _locked(rt, conversation_sid, pair):
        ledger = rt.ledger
        if change == "added":
            ledger.record_conversation(conversation_sid, "active", at)
            ledger.touch(conversation_sid, at)
            applied = ledger.bind(pair, conversation_sid, participant_sid, at) if pair else True
            if identity:
                ledger.add_identity(conversation_sid, identity)
        else:
            applied = ledger.release(pair, conversation_sid, at) if pair else True
            if identity:
                ledger.remove_identity(conversation_sid, identity)
    return {"outcome": "recorded" if applied else "superseded"}


def state_updated(rt: Runtime, conversation_sid: str, state: str, at: float) -> dict:
    with _locked(rt, conversation_sid):
        applied = rt.ledger.set_state(conversation_sid, state, at)
    if applied:
        schedule_close_if_inactive(rt, conversation_sid, state, at)
    return {"outcome": "recorded" if applied else "superseded", "state": state}


def conversation_removed(rt: Runtime, conversation_sid: str, at: float) -> dict:
    with _locked(rt, conversation_sid):
        applied = rt.ledger.set_state(conversation_sid, "removed", at)
    return {"outcome": "recorded" if applied else "superseded"}


def message_added(rt: Runtime, conversation_sid: str, at: float) -> dict:
    # No lock: `touch` is one atomic max() in Redis.
    rt.ledger.touch(conversation_sid, at)
    return {"outcome": "recorded"}


def schedule_close_if_inactive(rt: Runtime, conversation_sid: str, state: str, at: float) -> None:
    """Inactive since `at`: close after BINDERY_CLOSE_INACTIVE_AFTER. The close job checks when it
    runs that the conversation is still inactive since that same moment, so turning active again
    cancels it; one job per inactive period, however often the event is delivered."""
    delay = rt.settings.close_inactive_after
    if delay <= 0 or state != "inactive":
        return
    rt.dispatcher.enqueue(
        "workers.jobs.close_if_inactive",
        {"conversation_sid": conversation_sid, "inactive_since": at},
        kind="close-inactive",
        job_id=stable_id("close-inactive", conversation_sid, repr(at)),
        delay=delay,
    )
