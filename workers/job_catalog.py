"""Every job's name and id, as they are stored in Redis with queued jobs.

RQ stores a job's function as a dotted name (`workers.jobs.participant_add`) and de-duplicates by
job id, so both outlive a release: a job queued by the last version must still run on this one,
and a redelivered webhook must still map to the same id. `tests/workers/test_job_catalog.py` pins
every literal. The functions themselves are in `workers/jobs.py`.
"""

from __future__ import annotations

import hashlib

_MODULE = "workers.jobs."

# Work asked for by the app, the pre-event, the clock and operators.
PARTICIPANT_ADD = _MODULE + "participant_add"
STATE_CHANGE = _MODULE + "state_change"
CLOSE_IF_INACTIVE = _MODULE + "close_if_inactive"
CLOSE_IF_STALE = _MODULE + "close_if_stale"
CLEANUP = _MODULE + "cleanup_stale"
RECONCILE = _MODULE + "reconcile_ledger"
PRUNE = _MODULE + "prune_ledger"
REPLAY_FAILED = _MODULE + "replay_failed"
SESSION_OPEN = _MODULE + "session_open"
SESSION_CLOSE = _MODULE + "session_close"
SESSION_CHECK = _MODULE + "session_check"

# Post-events, named after Twilio's.
ON_CONVERSATION_ADDED = _MODULE + "on_conversation_added"
ON_PARTICIPANT_ADDED = _MODULE + "on_participant_added"
ON_PARTICIPANT_REMOVED = _MODULE + "on_participant_removed"
ON_CONVERSATION_STATE_UPDATED = _MODULE + "on_conversation_state_updated"
ON_CONVERSATION_REMOVED = _MODULE + "on_conversation_removed"
ON_MESSAGE_ADDED = _MODULE + "on_message_added"

# The names post-events had before 0.2 (`record_participant` took `change="added"|"removed"`);
# jobs queued under them still run.
LEGACY = (
    _MODULE + "record_conversation_added",
    _MODULE + "record_participant",
    _MODULE + "record_state",
    _MODULE + "record_conversation_removed",
    _MODULE + "record_message",
)


def stable_id(kind: str, *parts: str) -> str:
    """A job id derived from what identifies an operation, for at-most-once enqueueing."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{kind}-{digest}"


def event_job_id(idempotency_token: str, delivery_key: str) -> str:
    """A post-event's job: Twilio's `I-Twilio-Idempotency-Token`, else the event's own identity."""
    return stable_id("event", idempotency_token or delivery_key)


def add_job_id(conversation_sid: str, idempotency_key: str) -> str:
    return stable_id("add", conversation_sid, idempotency_key)


def state_job_id(conversation_sid: str, idempotency_key: str) -> str:
    return stable_id("state", conversation_sid, idempotency_key)


def auto_add_job_id(conversation_sid: str, identity: str) -> str:
    return stable_id("auto-add", conversation_sid, identity)


def pre_event_add_job_id(conversation_sid: str, address: str, proxy: str, holder: str) -> str:
    return stable_id("pre-add", conversation_sid, address, proxy, holder)


def close_inactive_job_id(conversation_sid: str, inactive_since: float) -> str:
    return stable_id("close-inactive", conversation_sid, repr(inactive_since))


def cleanup_close_job_id(conversation_sid: str, scan_started: float) -> str:
    """One close per conversation per scan (a later scan may try again: the close re-checks)."""
    return stable_id("cleanup-close", conversation_sid, repr(float(int(scan_started))))


def replay_batch_job_id(batch_id: str) -> str:
    """The console's background "replay all matching" run."""
    return f"replay-batch-{batch_id}"


def policy_retry_job_id(job_id: str, policy: str) -> str:
    """A conflict's add, asked for again with another policy (one per job and policy)."""
    return stable_id("policy-retry", job_id, policy)


def session_open_job_id(session_id: str) -> str:
    return f"session-open-{session_id}"


def session_close_job_id(session_id: str) -> str:
    return f"session-close-{session_id}"


def session_check_job_id(session_id: str, check: int) -> str:
    """The look at a session's conversation at its ttl (and after, `check` counting)."""
    return f"session-check-{session_id}-{check}"


def schedule_job_id(name: str, window: int) -> str:
    return f"schedule-{name}-{window}"
