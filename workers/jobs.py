"""The RQ jobs: importable functions that take SIDs and small values and return a JSON outcome.

Each one builds nothing itself: it takes this process's `Runtime` and calls the module that owns
the logic. Failures raise. RQ retries them (with the jittered backoff `Dispatcher` set) unless they
are permanent: a Twilio 4xx, or a request Twilio would refuse, fails at once with its code.
"""

from __future__ import annotations

from rq import get_current_job

from workers import failures, ledger_events, logs, metrics, runtime
from workers.gateway import Permanent
from workers.participants import AddRequest, add_participant
from workers.states import change_state


def _no_retry_on_permanent(fn):
    def job(**kwargs):
        current = get_current_job()
        context = logs.job_context.set(
            {
                "job_id": current.id if current else "",
                "kind": current.meta.get("kind", "") if current else "",
                "conversation_sid": kwargs.get("conversation_sid", ""),
            }
        )
        rt = runtime.current()
        kind = current.meta.get("kind", fn.__name__) if current else fn.__name__
        try:
            outcome = fn(rt, **kwargs)
        except Exception as error:
            metrics.JOBS.labels(kind, "error").inc()
            if current is not None:
                failures.record_attempt(current, error)
                if isinstance(error, Permanent):
                    current.retries_left = 0  # RQ reads this when the job fails: do not retry
            raise
        finally:
            logs.job_context.reset(context)
        result = outcome.get("outcome", "done") if isinstance(outcome, dict) else "done"
        metrics.JOBS.labels(kind, result).inc()
        if current is not None and result == "conflict":
            failures.record_conflict(rt, current.id, outcome)
        return outcome

    job.__name__ = fn.__name__
    job.__doc__ = fn.__doc__
    return job


@_no_retry_on_permanent
def participant_add(
    rt,
    conversation_sid: str,
    address: str = "",
    proxy_address: str = "",
    identity: str = "",
    policy: str = "",
) -> dict:
    """Add a chat participant (identity) or an SMS/WhatsApp pair, never a duplicate binding."""
    request = AddRequest(conversation_sid, address, proxy_address, identity, policy)
    return add_participant(rt, request)


@_no_retry_on_permanent
def state_change(rt, conversation_sid: str, state: str, at: float, reason: str = "api") -> dict:
    """Set a conversation's state, ordered by `at` (epoch seconds)."""
    return change_state(rt, conversation_sid, state, at, reason)


@_no_retry_on_permanent
def close_if_inactive(rt, conversation_sid: str, inactive_since: float) -> dict:
    """Close a conversation still inactive since `inactive_since` (the inactive-close timer)."""
    record = rt.ledger.conversation(conversation_sid)
    if record.state != "inactive" or record.state_at != inactive_since:
        return {
            "outcome": "cancelled",
            "conversation_sid": conversation_sid,
            "current": record.state,
        }
    return change_state(rt, conversation_sid, "closed", rt.gateway.now(), reason="inactive-timer")


@_no_retry_on_permanent
def record_conversation_added(
    rt, conversation_sid: str, state: str, at: float, address: str = "", proxy_address: str = ""
) -> dict:
    """onConversationAdded: the ledger records the conversation; auto-added identities follow."""
    return ledger_events.conversation_added(rt, conversation_sid, state, at, address, proxy_address)


@_no_retry_on_permanent
def record_participant(
    rt,
    conversation_sid: str,
    change: str,
    at: float,
    participant_sid: str = "",
    identity: str = "",
    address: str = "",
    proxy_address: str = "",
) -> dict:
    """onParticipantAdded / onParticipantRemoved: the ledger binds or releases."""
    return ledger_events.participant_changed(
        rt, conversation_sid, change, at, participant_sid, identity, address, proxy_address
    )


@_no_retry_on_permanent
def record_state(rt, conversation_sid: str, state: str, at: float) -> dict:
    """onConversationStateUpdated: the ledger's state; closed releases; inactive starts a timer."""
    return ledger_events.state_updated(rt, conversation_sid, state, at)


@_no_retry_on_permanent
def record_conversation_removed(rt, conversation_sid: str, at: float) -> dict:
    """onConversationRemoved: the ledger releases everything the conversation held."""
    return ledger_events.conversation_removed(rt, conversation_sid, at)


@_no_retry_on_permanent
def record_message(rt, conversation_sid: str, at: float) -> dict:
    """onMessageAdded: the conversation's last activity."""
    return ledger_events.message_added(rt, conversation_sid, at)


@_no_retry_on_permanent
def cleanup_stale(rt) -> dict:
    """The scheduled cleanup: schedule a close for each stale conversation."""
    from workers import cleanup

    report = cleanup.run(rt)
    return {
        "outcome": "scheduled",
        "closes": len(report),
        "conversations": [s.conversation_sid for s in report],
    }


@_no_retry_on_permanent
def reconcile_ledger(rt) -> dict:
    """The scheduled reconciliation: repair the ledger from Twilio."""
    from workers import reconcile

    differences = reconcile.run(rt)
    return {"outcome": "reconciled", "differences": len(differences)}


@_no_retry_on_permanent
def replay_failed(
    rt, batch_id: str, conversation: str = "", code: int = 0, kind: str = "", since: float = 0.0
) -> dict:
    """The console's "replay all matching": replay each matching failed job, with progress."""
    from workers import replay_batch

    return replay_batch.run(rt, batch_id, conversation, code, kind, since)
