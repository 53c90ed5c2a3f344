"""Asking again, with another conflict policy, for a participant-add that ended in a conflict.

A conflict is a business answer (the pair is held by a conversation the policy would not touch),
so the job finished and cannot be replayed; an operator who decides otherwise (`reuse` the holder,
`move` the pair, `close-stale`) gets a new participant-add job with the same arguments and the
policy chosen. It goes through the same locks and ledger as any add. Its id is derived from the
conflict's job and the policy, so a second click returns the same job instead of a second one.

The arguments come from the conflict's record (`failures.record_conflict` keeps the add's request
with it), so asking again works long after RQ let the finished job go (its result TTL is 10
minutes). A record written before records carried the request falls back to the job while RQ still
has it; once it does not, the answer is `expired`.
"""

from __future__ import annotations

from rq.job import Job

from workers import failures, job_catalog
from workers.runtime import Runtime
from workers.settings import CONFLICT_POLICIES

RESULTS = {
    "enqueued": "asked again with the policy chosen",
    "duplicate": "already asked again with that policy: the same job",
    "missing": "no conflict and no job of that id",
    "not_an_add": "the job is not a participant-add",
    "expired": (
        "the conflict was recorded without the add's arguments (by an older release) and RQ no "
        "longer has its job: ask for the add again through the API"
    ),
}
"""Each result of `retry`, as an operator reads it."""


def _request(rt: Runtime, job_id: str) -> tuple[str, str, dict]:
    """(result so far, function, arguments): from the conflict's record, else from the job."""
    record = failures.conflict(rt, job_id)
    request = (record or {}).get("request")
    if request:
        return "", request.get("function", ""), dict(request.get("arguments") or {})
    job = rt.queue.fetch(job_id)
    if job is None:
        return ("expired" if record else "missing"), "", {}
    return "", job.func_name, dict(job.kwargs or {})


def retry(rt: Runtime, job_id: str, policy: str) -> tuple[str, Job | None]:
    """(`enqueued` | `duplicate`, the new job), or (`missing` | `not_an_add` | `expired`, None);
    `RESULTS` says what each means."""
    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(CONFLICT_POLICIES)}")
    result, function, arguments = _request(rt, job_id)
    if result:
        return result, None
    if function != job_catalog.PARTICIPANT_ADD:
        return "not_an_add", None
    new, created = rt.queue.enqueue(
        job_catalog.PARTICIPANT_ADD,
        {**arguments, "policy": policy},
        kind="participant-add",
        job_id=job_catalog.policy_retry_job_id(job_id, policy),
        meta={"retry_of": job_id},
    )
    return ("enqueued" if created else "duplicate"), new
