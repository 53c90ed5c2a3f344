"""B4: job overhead. Participant-add jobs against the emulator with no added latency, against no-op
jobs (`bench.noop.noop`) on the same `bindery worker` pool, queue and job options.

The jobs are put on the queue in one pipeline, far faster than the workers take them, so each rate is
what the workers sustain (first enqueued to last ended). For scale, the same identity creates made
directly with the official client at the same concurrency show what the emulator itself costs.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict

from bench import adds, jobs
from bench.harness import Stack, calls_between
from bench.report import Report
from bench.sizes import Sizes

PROCESSES = 2
ROUNDS = 3
ADD = "workers.jobs.participant_add"


def run(sizes: Sizes) -> Report:
    report = Report("B4", f"job overhead, emulator without latency, {PROCESSES} worker processes")
    stack = Stack()
    try:
        _measure(stack, sizes, report)
    finally:
        stack.stop()
    return report


def _batch(stack: Stack, func: str, kwargs_list: list[dict], kind: str) -> dict:
    before = stack.emulator.stats()
    ids = jobs.enqueue_bulk(stack.redis.client, stack.settings(), func, kwargs_list, kind)
    done = jobs.wait(stack.redis.client, ids, timeout=600)
    after = stack.emulator.stats()
    timing = jobs.timing(done)
    calls = calls_between(before, after)
    return {
        "jobs": len(done),
        "jobs_per_s": round(timing["rate"], 1),
        "seconds": round(timing["span_s"], 2),
        "calls_per_job": round(sum(calls.values()) / len(done), 3),
        "outcomes": jobs.outcomes(done),
        "job_ms_p50": round(sorted(timing["service"])[len(done) // 2] * 1000, 2),
    }


def _kwargs(add: adds.Add) -> dict:
    return {k: v for k, v in asdict(add).items() if v}


def _measure(stack: Stack, sizes: Sizes, report: Report) -> None:
    stack.start_workers(PROCESSES)
    per_round = max(50, sizes.b4_jobs // ROUNDS)
    sides: dict[str, list[dict]] = {"noop": [], "identity": [], "pair": [], "direct": []}
    for _ in range(ROUNDS):
        identity = adds.prepare(stack, "identity", per_round)
        pair = adds.prepare(stack, "pair", per_round)
        direct_adds = adds.prepare(stack, "identity", per_round)
        noop_kwargs = [{"n": i} for i in range(per_round)]
        sides["noop"].append(_batch(stack, "bench.noop.noop", noop_kwargs, "noop"))
        for name, batch in (("identity", identity), ("pair", pair)):
            kwargs = [_kwargs(a) for a in batch]
            sides[name].append(_batch(stack, ADD, kwargs, "participant-add"))
        direct = adds.run_direct(stack, direct_adds, in_flight=PROCESSES)
        sides["direct"].append({"jobs_per_s": direct["ops_per_s"], "calls": direct["calls"]})

    rate = {name: statistics.median(r["jobs_per_s"] for r in runs) for name, runs in sides.items()}
    report.row("no-op jobs/s", rate["noop"], rate["noop"])
    report.row("identity add jobs/s", rate["identity"], rate["noop"])
    report.row("pair add jobs/s (2 calls each)", rate["pair"], rate["noop"])
    report.row("identity creates/s made directly (no RQ)", None, rate["direct"])
    per_job = {name: 1000 * PROCESSES / r for name, r in rate.items()}
    run_ms = {
        name: statistics.median(r["job_ms_p50"] for r in sides[name])
        for name in ("noop", "identity", "pair")
    }
    labels = {"noop": "no-op", "identity": "identity add", "pair": "pair add"}
    for name, label in labels.items():
        report.row(f"worker time per job: {label}", per_job[name], unit="ms")
    for name, label in labels.items():
        report.row(f"job code time p50: {label}", run_ms[name], unit="ms")
    for name in ("identity", "pair"):
        ended = {k for r in sides[name] for k in r["outcomes"]}
        if ended != {"added"}:
            report.notes.append(f"{name} adds ended {ended}")
    report.notes.append(
        f"medians of {ROUNDS} interleaved rounds of {per_round} jobs each; ratio: against the "
        "no-op rate. Worker time per job = processes / rate; job code = started to ended inside "
        "the worker (the Twilio call included); the rest of the worker time is RQ's own "
        "(dequeue, status and result writes). The direct creates run from one process (2 threads)"
    )
    report.details = {"rounds": sides, "jobs_per_round": per_round}
