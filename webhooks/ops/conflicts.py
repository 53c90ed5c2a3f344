"""Conflict outcomes (the pair held by a conversation the policy would not touch), with holder,
policy and time, and asking again with another policy (`workers.policy_retry`)."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, url_for

from webhooks.ops import filters
from webhooks.ops.blueprint import blueprint, runtime
from webhooks.ops.failed import JOB_ID, MAX_ROWS
from webhooks.ops.session import operator
from workers import failures, policy_retry
from workers.settings import CONFLICT_POLICIES

log = logging.getLogger(__name__)

POLICY_MEANINGS = {
    "reuse": "the conversation that holds the pair is the answer: nothing is added",
    "close-stale": "close the holder if it is inactive or idle past the stale limit, then add",
    "move": "remove the participant from the holder, then add it here",
    "reject": "refuse again (a conflict again, unless the pair was freed meanwhile)",
}


@blueprint.get("/conflicts")
def conflict_list():
    form = filters.read({"since": request.args.get("since", "")})
    items = failures.conflicts(runtime(), since=form.filters().since)
    items.sort(key=lambda item: item.get("at", 0), reverse=True)
    return render_template(
        "ops/conflicts.html", form=form, items=items[:MAX_ROWS], total=len(items), max_rows=MAX_ROWS
    )


def _conflict(job_id: str) -> dict | None:
    if not JOB_ID.fullmatch(job_id):
        return None
    return failures.conflict(runtime(), job_id)


def _asked_for(conflict: dict, job: dict | None) -> dict | None:
    """The add's arguments (numbers masked): from the conflict's record, else from its job while
    RQ has it; None when neither has them (asking again is then refused as `expired`)."""
    request = conflict.get("request")
    if request:
        return failures.masked_arguments(request.get("arguments") or {})
    return job["arguments"] if job else None


@blueprint.get("/conflicts/<job_id>")
def conflict_page(job_id: str):
    conflict = _conflict(job_id)
    if conflict is None:
        page = render_template(
            "ops/message.html",
            title="No such conflict",
            detail="Conflicts are listed from the most recent 10,000.",
            status=404,
        )
        return page, 404
    job = failures.show(runtime(), job_id)
    return render_template(
        "ops/conflict.html",
        conflict=conflict,
        job=job,
        asked_for=_asked_for(conflict, job),
        expired=policy_retry.RESULTS["expired"],
        policies=[
            (p, POLICY_MEANINGS[p]) for p in CONFLICT_POLICIES if p != conflict.get("policy")
        ],
    )


@blueprint.post("/conflicts/<job_id>/replay")
def conflict_replay(job_id: str):
    policy = request.form.get("policy", "")
    if policy not in CONFLICT_POLICIES or _conflict(job_id) is None:
        flash("Choose one of the policies offered.", "error")
        return redirect(url_for("ops.conflict_list"), 303)
    result, job = policy_retry.retry(runtime(), job_id, policy)
    log.info("ops: operator %s asked %s again with %s: %s", operator(), job_id, policy, result)
    if job is None:
        flash(f"Not asked again: {policy_retry.RESULTS[result]}.", "error")
        return redirect(url_for("ops.conflict_page", job_id=job_id), 303)
    if result == "duplicate":
        flash(f"Already asked with {policy}: this is that job.", "ok")
    else:
        flash(f"Asked again with policy {policy}.", "ok")
    return redirect(url_for("ops.job_page", job_id=job.id), 303)
