"""The overview: queues, workers and heartbeats, readiness, the counters, the schedule, and what
became of recent jobs (by outcome, and failures by Twilio code) as charts."""

from __future__ import annotations

import time

from flask import render_template, request

from webhooks.health import HEARTBEAT_STALE
from webhooks.ops import charts
from webhooks.ops.blueprint import blueprint, runtime
from workers import failures, job_history, status

HOURS = (1, 6, 24)
"""The spans the charts offer, in hours."""
HEADLINE_COUNTERS = (
    ("duplicate_attempts_avoided", "duplicate attempts avoided"),
    ("reconciled_50416", "50416 reconciled"),
    ("conflicts", "conflicts"),
    ("conflicts_resolved", "conflicts resolved"),
)
OUTCOME_ORDER = ["added", "already_present", "conflict_resolved", "conflict", "failed"]


def readiness(snapshot: dict) -> list[str]:
    """What keeps the deployment from being ready (as `/readyz` tells it); empty when ready."""
    alive = [
        w
        for w in snapshot["workers"]
        if w["seconds_since_heartbeat"] is not None
        and w["seconds_since_heartbeat"] < HEARTBEAT_STALE
    ]
    if not alive:
        return [f"no worker has sent a heartbeat in the last {HEARTBEAT_STALE} s"]
    return []


@blueprint.get("/")
def overview():
    rt = runtime()
    hours = request.args.get("hours", type=int)
    hours = hours if hours in HOURS else 6
    now = time.time()
    since = now - hours * 3600
    snapshot = status.snapshot(rt)
    recent_failures = failures.failed(rt, since=since)
    finished = job_history.finished_since(rt, since, now)
    outcomes = charts.stacked(
        "Jobs by outcome",
        [(max(f.at, since), f.outcome, f.count) for f in finished]
        + [(f.failed_at, "failed") for f in recent_failures],
        since,
        now,
        order=OUTCOME_ORDER,
    )
    codes = charts.stacked(
        "Failures by Twilio code",
        [(f.failed_at, str(f.code) if f.code else "no code") for f in recent_failures],
        since,
        now,
    )
    counters = snapshot["counters"]
    headline = [(label, counters.get(name, 0)) for name, label in HEADLINE_COUNTERS]
    others = sorted((k, v) for k, v in counters.items() if k not in dict(HEADLINE_COUNTERS))
    return render_template(
        "ops/overview.html",
        snapshot=snapshot,
        problems=readiness(snapshot),
        heartbeat_stale=HEARTBEAT_STALE,
        hours=hours,
        hour_choices=HOURS,
        charts=[outcomes, codes],
        headline=headline,
        other_counters=others,
        now=now,
    )
