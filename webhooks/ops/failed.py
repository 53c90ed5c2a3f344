"""Failed jobs: filtered by conversation, Twilio code, kind and time, each with its error; replaying
a selection of them."""

from __future__ import annotations

import logging
import re
from collections import Counter

from flask import flash, redirect, render_template, request, url_for

from webhooks.ops import filters
from webhooks.ops.blueprint import blueprint, runtime
from webhooks.ops.session import operator
from workers import failures, replay_batch

log = logging.getLogger(__name__)

MAX_ROWS = 200
"""Rows a page lists; the count, and "replay all matching", cover every match."""
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@blueprint.get("/failed")
def failed_jobs():
    rt = runtime()
    form = filters.read(request.args)
    wanted = form.filters()
    # Kinds are offered from what the other filters match, before the kind filter narrows it.
    candidates = failures.failed(
        rt, conversation=wanted.conversation, code=wanted.code, since=wanted.since
    )
    kinds = sorted({item.kind for item in candidates} | ({wanted.kind} if wanted.kind else set()))
    items = [item for item in candidates if not wanted.kind or item.kind == wanted.kind]
    return render_template(
        "ops/failed.html",
        form=form,
        kinds=kinds,
        items=items[:MAX_ROWS],
        total=len(items),
        max_rows=MAX_ROWS,
        codes=Counter(item.code for item in items).most_common(),
        batches=replay_batch.recent(rt, 5),
    )


def summary(results: Counter) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(results.items()))


@blueprint.post("/failed/replay")
def replay_selected():
    form = filters.read(request.form)
    ids = [i for i in request.form.getlist("job_id") if JOB_ID.fullmatch(i)][:MAX_ROWS]
    if not ids:
        flash("Select the jobs to replay first.", "error")
        return redirect(url_for("ops.failed_jobs", **form.query()), 303)
    rt = runtime()
    results = Counter(failures.replay(rt, job_id) for job_id in ids)
    log.info(
        "ops: operator %s replayed %d selected job(s): %s", operator(), len(ids), summary(results)
    )
    flash(f"Replayed {len(ids)} job(s): {summary(results)}.", "ok")
    return redirect(url_for("ops.failed_jobs", **form.query()), 303)
