"""One job: its arguments (numbers masked), each attempt with its time, Twilio code and error, the
outcome, its replays; replaying it when it failed. And finding a job by its id."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, url_for

from webhooks.ops.blueprint import blueprint, runtime
from webhooks.ops.failed import JOB_ID
from webhooks.ops.session import operator
from workers import failures
from workers.addresses import mask_text

log = logging.getLogger(__name__)

REPLAY_ANSWERS = {
    "requeued": ("Requeued: it runs again through the same locks and ledger.", "ok"),
    "not_failed": ("Not replayed: the job is not in the failed list (anymore).", "error"),
    "missing": ("Not replayed: RQ no longer has this job.", "error"),
}


def _not_found(job_id: str):
    page = render_template(
        "ops/message.html",
        title="No such job",
        detail="RQ keeps finished jobs for 10 minutes and failed ones for 30 days.",
        status=404,
    )
    return page, 404


@blueprint.get("/jobs")
def find_job():
    job_id = (request.args.get("id") or "").strip()
    if not JOB_ID.fullmatch(job_id):
        flash("A job id is letters, digits, - and _.", "error")
        return redirect(url_for("ops.failed_jobs"), 303)
    return redirect(url_for("ops.job_page", job_id=job_id), 303)


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str):
    info = failures.show(runtime(), job_id) if JOB_ID.fullmatch(job_id) else None
    if info is None:
        return _not_found(job_id)
    outcome = info.get("outcome")
    outcome_items = (
        [(k, mask_text(str(v))) for k, v in sorted(outcome.items())]
        if isinstance(outcome, dict)
        else []
    )
    return render_template("ops/job.html", job=info, outcome_items=outcome_items)


@blueprint.post("/jobs/<job_id>/replay")
def replay_job(job_id: str):
    if not JOB_ID.fullmatch(job_id):
        return _not_found(job_id)
    result = failures.replay(runtime(), job_id)
    log.info("ops: operator %s replayed job %s: %s", operator(), job_id, result)
    message, category = REPLAY_ANSWERS[result]
    flash(message, category)
    return redirect(url_for("ops.job_page", job_id=job_id), 303)
