"""Asking again, with another conflict policy, for a participant-add that ended in a conflict.

A conflict is a business answer (the pair is held by a conversation the policy would not touch),
so the job finished and cannot be replayed; an operator who decides otherwise (`reuse` the holder,
`move` the pair, `close-stale`) gets a new participant-add job with the same arguments and the
policy chosen. It goes through the same locks and ledger as any add. Its id is derived from the
conflict's job and the policy, so a second click returns the same job instead of a second one.
"""

from __future__ import annotations

from rq.job import Job

from workers import job_catalog
from workers.runtime import Runtime
from workers.settings import CONFLICT_POLICIES


def retry(rt: Runtime, job_id: str, policy: str) -> tuple[str, Job | None]:
    """(`enqueued` | `duplicate`, the new job), or (`missing` | `not_an_add`, None)."""
    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(CONFLICT_POLICIES)}")
    job = rt.queue.fetch(job_id)
    if job is None:
        return "missing", None
    if job.func_name != job_catalog.PARTICIPANT_ADD:
        return "not_an_add", None
    kwargs = {**(job.kwargs or {}), "policy": policy}
    new, created = rt.queue.enqueue(
        job_catalog.PARTICIPANT_ADD,
        kwargs,
        kind="participant-add",
        job_id=job_catalog.policy_retry_job_id(job_id, policy),
        meta={"retry_of": job_id},
    )
    return ("enqueued" if created else "duplicate"), new
