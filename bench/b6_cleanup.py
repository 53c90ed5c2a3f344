"""B6: the stale-conversation cleanup scan at two sizes (10,000 and 50,000 conversations in the
full run: see `bench/sizes.py`), a fifth of them stale, to show how the scan's time grows.

The stale ones are created first; the emulator's clock then moves past BINDERY_STALE_AFTER (6 h by
default) and the rest are created. The baseline is a plain paging loop over the same conversations
with the official client (same page size, same idleness test, no ledger). Bindery's scan runs in
this process (`workers.cleanup.run`, as `bindery cleanup` does), first as a dry run (the scan
alone), then for real; the closes it schedules are applied by `bindery worker` processes, and every
conversation is checked afterwards: the stale ones closed, the others untouched.
"""

from __future__ import annotations

import time

from bench import jobs
from bench.harness import Stack, calls_between
from bench.report import Report
from bench.sizes import Sizes
from workers import cleanup
from workers.runtime import Runtime

PROCESSES = 2
PAGE_SIZE = 100
"""What `Gateway.conversations` asks for."""
CLOSE_RATE = 0.0
"""Closes per second the real run schedules: 0 = all at once. The default (10/s, to stay under
Twilio's write limits) would spread 2,000 closes over 200 s; the scan is the same either way."""


STALE_SHARE = 0.2
"""The share of each size's conversations that is stale."""


def run(sizes: Sizes) -> Report:
    shown = " and ".join(f"{n:,}" for n in sizes.b6_conversations)
    report = Report("B6", f"cleanup scan, {shown} conversations ({STALE_SHARE:.0%} stale)")
    stack = Stack()
    try:
        stack.start_workers(PROCESSES)
        for size in sizes.b6_conversations:
            stack.emulator.reset()
            stack.redis.client.flushall()
            _measure(stack, size, round(size * STALE_SHARE), report)
    finally:
        stack.stop()
    return report


def _snapshot(client) -> dict[str, tuple[str, float]]:
    return {
        c.sid: (c.state, c.date_updated.timestamp())
        for c in client.conversations.v1.conversations.stream(page_size=PAGE_SIZE)
    }


def plain_scan(client, stale_after: float) -> list[str]:
    """The baseline: page through open conversations and keep those idle too long."""
    stale = []
    for state in ("active", "inactive"):
        for c in client.conversations.v1.conversations.stream(state=state, page_size=PAGE_SIZE):
            last = max(c.date_updated, c.date_created).timestamp()
            if client.http_client.clock.now() - last > stale_after:
                stale.append(c.sid)
    return stale


def _timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def _measure(stack: Stack, size: int, stale: int, report: Report) -> None:
    settings = stack.settings()
    emulator = stack.emulator
    created = time.perf_counter()
    stale_sids = set(emulator.create_conversations(stale))
    emulator.advance_clock(settings.stale_after + 3600)
    emulator.create_conversations(size - stale)
    setup_s = time.perf_counter() - created
    client = emulator.client()
    before = _snapshot(client)

    rt = Runtime.build(settings)
    plain, plain_s = _timed(plain_scan, client, settings.stale_after)
    dry, dry_s = _timed(cleanup.run, rt, dry_run=True)
    plain_again, plain_again_s = _timed(plain_scan, client, settings.stale_after)
    calls_before = emulator.stats()
    scheduled, real_s = _timed(cleanup.run, rt, rate=CLOSE_RATE)
    closed_jobs = jobs.wait(stack.redis.client, [s.job_id for s in scheduled], 600)
    closes = jobs.timing(closed_jobs)
    calls = calls_between(calls_before, emulator.stats())
    after = _snapshot(client)

    plain_best = min(plain_s, plain_again_s)
    label = f"{size:,}"
    report.row(f"{label}: scan time, dry run", dry_s, plain_best, "s")
    report.row(f"{label}: scan + scheduling the closes", real_s, plain_best, "s")
    report.row(f"{label}: closes, first scheduled to last applied", closes["span_s"], unit="s")
    report.row(f"{label}: stale found", len(dry), len(plain), ratio=False)
    closed = {sid for sid, (state, _) in after.items() if state == "closed"}
    touched = [
        sid
        for sid, (state, updated) in after.items()
        if sid not in stale_sids and (state, updated) != before.get(sid)
    ]
    report.row(f"{label}: stale closed / stale created", len(closed & stale_sids), len(stale_sids))
    report.row(f"{label}: others changed (should be 0)", len(touched), ratio=False)
    updates = calls.get("conversations.update", 0)
    report.row(f"{label}: Twilio updates per close", updates / max(1, len(scheduled)), ratio=False)
    close_outcomes = jobs.outcomes(closed_jobs)
    verified = (
        {s.conversation_sid for s in dry} == stale_sids
        and set(plain) == stale_sids
        and closed == stale_sids
        and not touched
        and len(closed_jobs) == len(stale_sids)
        and not set(close_outcomes) & {"failed", "stopped", "canceled"}
    )
    report.target(f"{label}: stale closed, others untouched (1 = verified)", int(verified), ">= 1")
    report.notes.append(
        f"{label}: verified: exactly the stale conversations found and closed, the others untouched"
        if verified
        else f"{label}: VERIFICATION FAILED: see details"
    )
    report.notes.append(
        f"{label}: closes scheduled at --rate {CLOSE_RATE:g} (all at once); the default "
        f"{cleanup.DEFAULT_RATE:g}/s would take {stale / cleanup.DEFAULT_RATE:.0f} s"
    )
    report.details.setdefault("sizes", {})[str(size)] = {
        "setup_s": round(setup_s, 1),
        "plain_scan_s": [round(plain_s, 2), round(plain_again_s, 2)],
        "bindery_dry_scan_s": round(dry_s, 2),
        "bindery_real_scan_s": round(real_s, 2),
        "closes_span_s": round(closes["span_s"], 2),
        "calls_during_real_run": calls,
        "verified": verified,
        "closed": len(closed),
        "stale_created": len(stale_sids),
        "touched": touched[:10],
        "close_outcomes": close_outcomes,
    }
