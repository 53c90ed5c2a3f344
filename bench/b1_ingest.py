"""B1: post-event ingest under gunicorn: signed, validated, de-duplicated, enqueued.

Closed loop for the rate at saturation, then an open loop at half of Bindery's saturation rate for
p50/p99, each against the bare app and Bindery in turn. The machine is shared, so both are run in
several short interleaved rounds: the throughput ratio is the median of each round's ratio (a bare
run and a Bindery run seconds apart), and the CPU each used is read from /proc, along with what other
users took meanwhile. No workers run: the jobs stay in the queue, which is counted to show that every
distinct event was enqueued exactly once. A last, untargeted row repeats the saturation rounds with
both apps under another gunicorn setting (`TUNED`), to show what tuning the server does and does not
change.
"""

from __future__ import annotations

import os
import statistics

from bench import jobs, load
from bench.harness import WEB_THREADS, WEB_WORKERS, CpuMeter, Stack
from bench.report import Report
from bench.signing import Signer
from bench.sizes import Sizes
from emulator.defaults import DEFAULT_AUTH_TOKEN

TUNED = (2 * (os.cpu_count() or 1), 1)
"""gunicorn workers and threads of the tuned run: two single-threaded processes per core."""
EXPECTED_RATE = 2500
"""Requests/s Bindery is sized for when signing requests in advance (more are made if it runs out)."""


def run(sizes: Sizes) -> Report:
    report = Report(
        "B1", f"post-event ingest, gunicorn {WEB_WORKERS} workers x {WEB_THREADS} threads"
    )
    stack = Stack(emulator=False)
    try:
        _measure(stack, sizes, report)
    finally:
        stack.stop()
    return report


class _Events:
    """Distinct signed events for Bindery, handed out once each (signed ahead of the load)."""

    def __init__(self, signer: Signer, count: int):
        self.signer = signer
        self.pool = signer.post_events(count)
        self.sent = 0
        self.reused = 0

    def fresh(self, count: int) -> list[bytes]:
        if self.sent + count > len(self.pool):
            more = self.sent + count - len(self.pool)
            self.pool += self.signer.post_events(more, offset=len(self.pool))
        return self.pool[self.sent :]

    def used(self, result: load.Result) -> None:
        self.sent += min(result.sent, len(self.pool) - self.sent)
        self.reused += result.reused


def _saturation_rounds(
    stack: Stack, sizes: Sizes, report: Report, bare: tuple, events: _Events
) -> list[dict]:
    """Interleaved closed-loop runs, the bare app then Bindery, each with the CPU it used."""
    bare_process, bare_url = bare
    meter = CpuMeter({**stack.cpu_parts(), "bare": bare_process.tree})
    per_round = int(EXPECTED_RATE * (sizes.b1_seconds + sizes.b1_warmup))

    def saturate(target: str, requests: list[bytes]) -> tuple[load.Result, dict]:
        meter.start()
        result = load.closed_loop(
            target, requests, sizes.b1_connections, sizes.b1_seconds, sizes.b1_warmup
        )
        return result, meter.stop()

    rounds = []
    for _ in range(sizes.b1_rounds):
        theirs, bare_cpu = saturate(bare_url, events.pool)
        ours, ours_cpu = saturate(stack.web_url, events.fresh(per_round))
        events.used(ours)
        _check(ours, report, "saturation")
        rounds.append(
            {
                "bare": round(theirs.rate, 1),
                "bindery": round(ours.rate, 1),
                "ratio": round(ours.rate / theirs.rate, 3),
                "cpu_bare": bare_cpu,
                "cpu_bindery": ours_cpu,
            }
        )
    return rounds


def _signed_events(stack: Stack, sizes: Sizes) -> _Events:
    """Events signed for the web process now running (its port is part of the signed URL)."""
    per_round = int(EXPECTED_RATE * (sizes.b1_seconds + sizes.b1_warmup))
    signer = Signer(stack.web_url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
    return _Events(signer, per_round * sizes.b1_rounds)


def _tuned(stack: Stack, sizes: Sizes, report: Report) -> dict:
    """The same saturation rounds with one single-threaded gunicorn process per core, twice over:
    Python threads in one process share its GIL, and threads that wait on Redis hand it back slowly."""
    workers, threads = TUNED
    stack.start_web(workers, threads)
    bare = stack.start_bare(workers, threads)
    rounds = _saturation_rounds(stack, sizes, report, bare, _signed_events(stack, sizes))
    ratio = statistics.median(r["ratio"] for r in rounds)
    report.row(
        f"requests/s at saturation, tuned: {workers} workers x {threads} thread",
        statistics.median(r["bindery"] for r in rounds),
        statistics.median(r["bare"] for r in rounds),
        ratio=ratio,
    )
    return {"workers": workers, "threads": threads, "rounds": rounds}


def _measure(stack: Stack, sizes: Sizes, report: Report) -> None:
    url = stack.start_web()
    bare_process, bare_url = stack.start_bare()
    _, trivial_url = stack.start_trivial()
    events = _signed_events(stack, sizes)
    ceiling = load.closed_loop(
        trivial_url, events.pool[:5000], sizes.b1_connections, sizes.b1_seconds, sizes.b1_warmup
    )
    rounds = _saturation_rounds(stack, sizes, report, (bare_process, bare_url), events)

    saturation = statistics.median(r["bindery"] for r in rounds)
    half = saturation / 2
    count = int(half * sizes.b1_seconds) + 1
    ours_halves, bare_halves = [], []
    for _ in range(sizes.b1_rounds):
        ours_half = load.open_loop(url, events.fresh(count), rate=half, duration=sizes.b1_seconds)
        events.used(ours_half)
        _check(ours_half, report, "half load")
        ours_halves.append(ours_half.summary())
        bare_half = load.open_loop(bare_url, events.pool, rate=half, duration=sizes.b1_seconds)
        bare_halves.append(bare_half.summary())

    def median(key: str, side: str = "") -> float:
        return statistics.median(r[key][side] if side else r[key] for r in rounds)

    def latency(halves: list[dict], point: str) -> float:
        return statistics.median(h["latency_ms"][point] for h in halves)

    ratio = median("ratio")
    report.row("requests/s at saturation", saturation, median("bare"), ratio=ratio)
    for point in ("p50", "p99", "p99.9"):
        report.row(
            f"{point} at {half:,.0f} req/s (half)",
            latency(ours_halves, point),
            latency(bare_halves, point),
            "ms",
        )
    report.row("generator ceiling (trivial server)", ceiling.rate, None, "req/s")
    report.row(
        "CPU cores at saturation: web",
        median("cpu_bindery", "web"),
        median("cpu_bare", "bare"),
        ratio=False,
    )
    report.row(
        "CPU cores at saturation: Redis",
        median("cpu_bindery", "redis"),
        median("cpu_bare", "redis"),
        ratio=False,
    )
    report.row(
        "CPU cores at saturation: generator",
        median("cpu_bindery", "bench"),
        median("cpu_bare", "bench"),
        ratio=False,
    )
    report.row(
        "CPU cores other users took meanwhile",
        median("cpu_bindery", "others"),
        median("cpu_bare", "others"),
        ratio=False,
    )
    queued = jobs.queue(stack.redis.client).count
    report.row("jobs enqueued / distinct events sent", queued, events.sent)
    report.target("throughput ratio", ratio, ">= 0.6")
    report.target("p99 at half load (ms)", latency(ours_halves, "p99"), "<= 15")
    ratios = [r["ratio"] for r in rounds]
    report.notes.append(
        f"ratio = median of {len(rounds)} interleaved rounds' ratios "
        f"(range {min(ratios):.2f} to {max(ratios):.2f}); latencies are medians of rounds"
    )
    report.notes.append(
        f"the generator reaches {ceiling.rate:,.0f} req/s against a trivial server and "
        f"{median('bare'):,.0f} against the bare app: it is not the bottleneck"
    )
    if events.reused:
        report.notes.append(f"{events.reused} requests were sent twice (pre-signed ones ran out)")
    stack.stop_process(bare_process)
    tuned = _tuned(stack, sizes, report)
    report.notes.append(
        "the tuned row is not a target: the same gunicorn settings for both, "
        f"{tuned['workers']} processes x {tuned['threads']} thread instead of the defaults"
    )
    report.details = {
        "saturation_rounds": rounds,
        "half_load_rate": round(half, 1),
        "bindery_half_load_rounds": ours_halves,
        "bare_half_load_rounds": bare_halves,
        "generator_ceiling": ceiling.summary(),
        "connections": sizes.b1_connections,
        "events": "3 onMessageAdded : 1 onParticipantAdded, each distinct",
        "tuned": tuned,
    }


def _check(result: load.Result, report: Report, phase: str) -> None:
    bad = {k: v for k, v in result.statuses.items() if k != 200}
    if bad or result.failures:
        report.notes.append(f"{phase}: non-200 answers {bad}, {result.failures} failed requests")
