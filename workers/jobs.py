"""The RQ jobs: every function a queued job may name, bound to the module that owns its logic.

Each entry is that module's function wrapped once (`_job`): it gets this process's runtime (the
worker installs it at start), puts the job's id and conversation on every log record, counts the
outcome, records a failed attempt for operators, logs a failure Bindery expects (a retry, a
permanent answer) in one line instead of RQ's traceback, and lets a permanent failure fail at once
instead of being retried. A job that waits in a busy lock's line (`workers/waiters.py`) returns
`rq.Retry` to RQ: scheduled to run again, woken before by the lock's holder, no failed attempt. The
names, as stored in Redis, are in `workers/job_catalog.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rq import get_current_job
from rq.job import Job

from workers import (
    cleanup,
    failures,
    job_catalog,
    job_history,
    logs,
    metrics,
    participants,
    post_events,
    pruning,
    reconcile,
    replay_batch,
    sessions,
    states,
    timers,
    waiters,
)
from workers import out_of_session as out_of_session_policy
from workers.errors import Permanent, Retryable
from workers.runtime import Runtime
from workers.staleness import format_duration

log = logging.getLogger(__name__)

_installed: Runtime | None = None


def install(rt: Runtime | None) -> None:
    """Give this process's jobs their runtime (the worker does, once, at start)."""
    global _installed
    _installed = rt


def installed() -> Runtime:
    if _installed is None:
        raise RuntimeError("no runtime installed: jobs run in `bindery worker` processes")
    return _installed


def _job(kind: str, handler: Callable[..., dict]) -> Callable[..., dict]:
    def run(**kwargs) -> dict:
        current = get_current_job()
        label = current.meta.get("kind", kind) if current else kind
        context = logs.job_context.set(
            {
                "job_id": current.id if current else "",
                "kind": label,
                "conversation_sid": kwargs.get("conversation_sid", ""),
            }
        )
        rt = installed()
        waited = bool(current and current.number_of_retries)  # RQ counts the waits (Retry)
        try:
            with waiters.waiting_as(current.id if current else "", waited_before=waited):
                outcome = handler(rt, **kwargs)
        except waiters.Parked as parked:
            metrics.JOBS.labels(label, "waiting").inc()
            log.debug("%s: leaves its worker until woken", parked)
            return waiters.retry(rt.settings.lock_ttl)
        except Exception as error:
            metrics.JOBS.labels(label, "error").inc()
            if current is not None:
                failures.record_attempt(current, error)
                if isinstance(error, Retryable | Permanent):
                    _log_expected_failure(current, error)
                if isinstance(error, Permanent):
                    current.retries_left = 0  # RQ reads this when the job fails: do not retry
            raise
        finally:
            logs.job_context.reset(context)
            rt.clock.publish(rt.connection)
        result = outcome.get("outcome", "done") if isinstance(outcome, dict) else "done"
        metrics.JOBS.labels(label, result).inc()
        job_history.record_outcome(rt.connection, result, time.time())
        if current is not None and result == "conflict":
            failures.record_conflict(
                rt, current.id, outcome, function=current.func_name, arguments=kwargs
            )
        return outcome

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    run.handler = handler  # type: ignore[attr-defined]
    return run


def _log_expected_failure(job: Job, error: Exception) -> None:
    """One line for a failure Bindery expects (a retry, or a permanent answer), instead of RQ's
    traceback: a warning while the job will be tried again, an error once it has failed."""
    failed = len(failures.this_run(job))
    attempt = f"attempt {failed} of {failures.attempts_allowed(job, failed - 1)}"
    if isinstance(error, Permanent):
        log.error("%s failed, not retried (permanent): %s", attempt, error)
    elif job.should_retry:
        wait = job.get_retry_interval()  # what RQ schedules the retry with, next
        log.warning(
            "%s failed, retrying in %s (at %s): %s",
            attempt,
            format_duration(wait),
            time.strftime("%H:%M:%SZ", time.gmtime(time.time() + wait)),
            error,
        )
    else:
        log.error("%s failed, no retry left: %s", attempt, error)
    logs.explained(job.id)


participant_add = _job("participant-add", participants.add_participant)
state_change = _job("state-change", states.change_state)
close_if_inactive = _job("close-inactive", timers.close_if_inactive)
close_if_stale = _job("close-stale", cleanup.close_if_stale)
cleanup_stale = _job("schedule:cleanup", cleanup.run_scheduled)
reconcile_ledger = _job("schedule:reconcile", reconcile.run_scheduled)
prune_ledger = _job("schedule:prune", pruning.run_scheduled)
replay_failed = _job("replay-batch", replay_batch.run)
out_of_session = _job("out-of-session", out_of_session_policy.handle)
out_of_session_delivery = _job("out-of-session:deliver", out_of_session_policy.deliver)
session_open = _job("session-open", sessions.run_opening)
session_close = _job("session-close", sessions.run_closing)
session_check = _job("session-check", sessions.check_ended)

on_conversation_added = _job("event:onConversationAdded", post_events.on_conversation_added)
on_participant_added = _job("event:onParticipantAdded", post_events.on_participant_added)
on_participant_removed = _job("event:onParticipantRemoved", post_events.on_participant_removed)
on_conversation_state_updated = _job(
    "event:onConversationStateUpdated", post_events.on_conversation_state_updated
)
on_conversation_removed = _job("event:onConversationRemoved", post_events.on_conversation_removed)
on_message_added = _job("event:onMessageAdded", post_events.on_message_added)

# Names post-events were queued under before 0.2: the same work.
record_conversation_added = on_conversation_added
record_participant = _job("event:participant", post_events.record_participant)
record_state = on_conversation_state_updated
record_conversation_removed = on_conversation_removed
record_message = on_message_added


def handler(name: str) -> Callable[..., dict]:
    """The logic behind a queued job's function name (`workers.jobs.participant_add`), for running
    a job in-process with a runtime of one's own."""
    module, _, attribute = name.rpartition(".")
    if module != job_catalog.PARTICIPANT_ADD.rpartition(".")[0]:
        raise KeyError(name)
    return globals()[attribute].handler
