"""Replay all failed jobs matching a filter: a dry-run count first, a confirmation, then a
background batch (`workers.replay_batch`) whose progress the page shows as it goes."""

from __future__ import annotations

import logging
import re
from collections import Counter

from flask import flash, jsonify, redirect, render_template, request, url_for

from webhooks.ops import filters
from webhooks.ops.blueprint import blueprint, runtime
from webhooks.ops.session import operator
from workers import replay_batch

log = logging.getLogger(__name__)

BATCH_ID = re.compile(r"[0-9a-f]{16}")


@blueprint.get("/failed/replay-all")
def replay_all_confirm():
    """The dry run: what the filter matches now, and a button to replay exactly that filter."""
    form = filters.read(request.args)
    items = [] if form.errors else replay_batch.matching(runtime(), form.filters())
    return render_template(
        "ops/replay_confirm.html",
        form=form,
        count=len(items),
        kinds=Counter(item.kind for item in items).most_common(),
        codes=Counter(item.code for item in items).most_common(),
        conversations=len({item.conversation_sid for item in items}),
    )


@blueprint.post("/failed/replay-all")
def replay_all_start():
    form = filters.read(request.form)
    if form.errors:
        # A filter in error would match everything: never turn a typo into "replay all".
        flash("The filter has errors; nothing was replayed.", "error")
        return redirect(url_for("ops.replay_all_confirm", **form.query()), 303)
    expected = request.form.get("expected", type=int) or 0
    rt = runtime()
    batch_id = replay_batch.start(rt, form.filters(), expected, operator() or "")
    log.info(
        "ops: operator %s started replay batch %s (%d job(s) matched the dry run)",
        operator(),
        batch_id,
        expected,
    )
    return redirect(url_for("ops.replay_page", batch_id=batch_id), 303)


def _batch(batch_id: str) -> dict | None:
    return replay_batch.progress(runtime(), batch_id) if BATCH_ID.fullmatch(batch_id) else None


@blueprint.get("/replays/<batch_id>")
def replay_page(batch_id: str):
    batch = _batch(batch_id)
    if batch is None:
        page = render_template(
            "ops/message.html",
            title="No such replay",
            detail="Replay batches are kept for 7 days.",
            status=404,
        )
        return page, 404
    return render_template("ops/replay.html", batch=batch)


@blueprint.get("/replays/<batch_id>/progress")
def replay_progress(batch_id: str):
    batch = _batch(batch_id)
    if batch is None:
        return jsonify(error="no such replay"), 404
    return jsonify(batch)
