"""B8: reconcile at size. A reconcile of N conversations (each with a customer's pair and an agent)
against an emulator that answers each call after `LATENCY_MS` and allows `CONCURRENCY` requests at
once, as Twilio's account limit does, against the least time that limit allows for the calls the
reconcile made (calls x latency / concurrency). Two sizes, to show how the time grows.

The ledger starts empty, so every pair and member is a difference to repair: the reconcile's
full work. It runs in this process with the settings the stack's processes read.
"""

from __future__ import annotations

import time

from bench.harness import Stack, calls_between
from bench.report import Report
from bench.sizes import Sizes
from workers import reconcile
from workers.runtime import Runtime

LATENCY_MS = 50
CONCURRENCY = 100


def run(sizes: Sizes) -> Report:
    report = Report(
        "B8",
        f"reconcile against an emulator at {LATENCY_MS} ms per call, {CONCURRENCY} concurrent",
    )
    stack = Stack()
    try:
        for size in sizes.b8_conversations:
            stack.emulator.reset()
            stack.redis.client.flushall()
            _measure(stack, size, report)
    finally:
        stack.stop()
    return report


def _populate(stack: Stack, size: int) -> None:
    client = stack.emulator.client()
    sids = stack.emulator.create_conversations(size)
    for n, sid in enumerate(sids):
        participants = client.conversations.v1.conversations(sid).participants
        participants.create(
            messaging_binding_address=f"+1555{n:07d}",
            messaging_binding_proxy_address="+14440000001",
        )
        participants.create(identity=f"agent-{n % 50}")


def _measure(stack: Stack, size: int, report: Report) -> None:
    _populate(stack, size)
    settings = stack.settings()
    rt = Runtime.build(settings)
    stack.emulator.faults(latency_ms=LATENCY_MS, max_concurrency=CONCURRENCY)
    before = stack.emulator.stats()
    started = time.perf_counter()
    differences = reconcile.run(rt)
    took = time.perf_counter() - started
    stack.emulator.faults()
    calls = sum(calls_between(before, stack.emulator.stats()).values())
    least = calls * LATENCY_MS / 1000 / CONCURRENCY
    label = f"{size:,} conversations"
    report.row(f"{label}: reconcile time", took, least, unit="s")
    report.row(f"{label}: Twilio calls", calls, ratio=False)
    report.row(f"{label}: differences repaired", len(differences), ratio=False)
    report.details.setdefault("sizes", {})[str(size)] = {
        "seconds": round(took, 2),
        "least_seconds": round(least, 2),
        "calls": calls,
        "differences": len(differences),
        "concurrency_setting": settings.reconcile_concurrency,
    }
