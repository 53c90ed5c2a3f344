"""B1: post-event ingest under gunicorn: signed, validated, de-duplicated, enqueued.

Closed loop for the rate at saturation, then an open loop at half of Bindery's saturation rate for
p50/p99, each against the bare app and Bindery in turn. The machine is shared, so both are run in
several short interleaved rounds: the throughput ratio is the median of each round's ratio (a bare
run and a Bindery run seconds apart), and the CPU each used is read from /proc, along with what other
users took meanwhile. No workers run: the jobs stay in the queue, which is counted to show that every
distinct event was enqueued exactly once. A last, untargeted row repeats the saturation rounds with
both apps under another gunicorn setting (`OTHER`: `bindery web`'s threaded setting before issue
15), to show what the server's setting does and does not change.
"""

from __future__ import annotations

import statistics

from bench import jobs, load, noise
from bench.harness import WEB_THREADS, WEB_WORKERS, CpuMeter, Stack
from bench.report import Report
from bench.signing import Signer
from bench.sizes import Sizes
from emulator.defaults import DEFAULT_AUTH_TOKEN

OTHER = (2, 4)
"""gunicorn workers and threads of the last row: 2 processes of 4 threads (the default until issue
15, when single-threaded processes served more)."""
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


class _Runner:
    """Runs and meters the rounds against Bindery's web process and the bare app now serving."""

    def __init__(self, stack: Stack, sizes: Sizes, report: Report, bare: tuple):
        self.stack, self.sizes, self.report = stack, sizes, report
        self.bare_process, self.bare_url = bare
        self.meter = CpuMeter({**stack.cpu_parts(), "bare": self.bare_process.tree})
        self.per_round = int(EXPECTED_RATE * (sizes.b1_seconds + sizes.b1_warmup))
        signer = Signer(stack.web_url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
        self.events = _Events(signer, self.per_round * (sizes.b1_rounds + sizes.retries))

    def _metered(self, fn, *args, **kwargs) -> tuple[load.Result, dict]:
        self.meter.start()
        result = fn(*args, **kwargs)
        return result, self.meter.stop()

    def saturation(self) -> noise.Rounds:
        """Closed-loop runs, the bare app then Bindery, each with the CPU it used."""
        s = self.sizes

        def one() -> tuple[dict, float]:
            loop = {
                "connections": s.b1_connections,
                "duration": s.b1_seconds,
                "warmup": s.b1_warmup,
            }
            theirs, bare_cpu = self._metered(
                load.closed_loop, self.bare_url, self.events.pool, **loop
            )
            ours, ours_cpu = self._metered(
                load.closed_loop, self.stack.web_url, self.events.fresh(self.per_round), **loop
            )
            self.events.used(ours)
            _check(ours, self.report, "saturation")
            values = {
                "bare": round(theirs.rate, 1),
                "bindery": round(ours.rate, 1),
                "ratio": round(ours.rate / theirs.rate, 3),
                "cpu_bare": bare_cpu,
                "cpu_bindery": ours_cpu,
            }
            return values, max(bare_cpu["others"], ours_cpu["others"])

        return noise.quiet_rounds(one, s.b1_rounds, s.retries)

    def half_load(self, rate: float) -> noise.Rounds:
        """Open-loop runs at `rate`, Bindery then the bare app."""
        s, count = self.sizes, int(rate * self.sizes.b1_seconds) + 1

        def one() -> tuple[dict, float]:
            ours, ours_cpu = self._metered(
                load.open_loop, self.stack.web_url, self.events.fresh(count), rate, s.b1_seconds
            )
            self.events.used(ours)
            _check(ours, self.report, "half load")
            theirs, bare_cpu = self._metered(
                load.open_loop, self.bare_url, self.events.pool, rate, s.b1_seconds
            )
            values = {"bindery": ours.summary(), "bare": theirs.summary()}
            return values, max(bare_cpu["others"], ours_cpu["others"])

        return noise.quiet_rounds(one, s.b1_rounds, s.retries)


def _tuned(stack: Stack, sizes: Sizes, report: Report) -> dict:
    """The saturation rounds again, both apps under the `OTHER` gunicorn setting."""
    workers, threads = OTHER
    stack.start_web(workers, threads)
    runner = _Runner(stack, sizes, report, stack.start_bare(workers, threads))
    rounds = runner.saturation()
    report.row(
        f"requests/s at saturation, other setting: {workers} workers x {threads} threads",
        statistics.median(r["bindery"] for r in rounds.kept),
        statistics.median(r["bare"] for r in rounds.kept),
        ratio=statistics.median(r["ratio"] for r in rounds.kept),
    )
    return {"workers": workers, "threads": threads, "rounds": rounds.kept, **rounds.to_dict()}


def _measure(stack: Stack, sizes: Sizes, report: Report) -> None:
    stack.start_web()
    bare = stack.start_bare()
    _, trivial_url = stack.start_trivial()
    runner = _Runner(stack, sizes, report, bare)
    ceiling = load.closed_loop(
        trivial_url, runner.events.pool[:5000], sizes.b1_connections, sizes.b1_seconds
    )
    saturation = runner.saturation()
    rounds = saturation.kept
    rate = statistics.median(r["bindery"] for r in rounds)
    half = runner.half_load(rate / 2)

    def median(key: str, side: str = "") -> float:
        return statistics.median(r[key][side] if side else r[key] for r in rounds)

    def latency(side: str, point: str) -> float:
        return statistics.median(h[side]["latency_ms"][point] for h in half.kept)

    ratio = median("ratio")
    report.row("requests/s at saturation", rate, median("bare"), ratio=ratio)
    for point in ("p50", "p99", "p99.9"):
        report.row(
            f"{point} at {rate / 2:,.0f} req/s (half)",
            latency("bindery", point),
            latency("bare", point),
            "ms",
        )
    report.row("generator ceiling (trivial server)", ceiling.rate, None, "req/s")
    for name, part, bare_part in (
        ("web", "web", "bare"),
        ("Redis", "redis", "redis"),
        ("generator", "bench", "bench"),
        ("other users", "others", "others"),
    ):
        report.row(
            f"CPU cores at saturation: {name}",
            median("cpu_bindery", part),
            median("cpu_bare", bare_part),
            ratio=False,
        )
    queued = jobs.queue(stack.redis.client).count
    report.row("jobs enqueued / distinct events sent", queued, runner.events.sent)
    report.target("throughput ratio", ratio, ">= 0.6")
    report.target(
        "p99 at half load / the bare app's",
        round(latency("bindery", "p99") / latency("bare", "p99"), 2),
        "<= 2",
    )
    ratios = [r["ratio"] for r in rounds]
    report.notes.append(
        f"ratio = median of the interleaved rounds' ratios (range {min(ratios):.2f} to "
        f"{max(ratios):.2f}); latencies are medians of rounds"
    )
    report.notes.append(saturation.note("saturation"))
    report.notes.append(half.note("half load"))
    report.notes.append(
        f"the generator reaches {ceiling.rate:,.0f} req/s against a trivial server and "
        f"{median('bare'):,.0f} against the bare app: it is not the bottleneck"
    )
    if runner.events.reused:
        report.notes.append(f"{runner.events.reused} requests were sent twice (pre-signed ran out)")
    tuned = {}
    if sizes.b1_tuned:
        stack.stop_process(bare[0])
        tuned = _tuned(stack, sizes, report)
        report.notes.append(
            "the other setting's row is not a target: the same gunicorn settings for both, "
            f"{tuned['workers']} processes x {tuned['threads']} threads instead of the defaults"
        )
    report.details = {
        "saturation_rounds": rounds,
        "saturation_noise": saturation.to_dict(),
        "half_load_rate": round(rate / 2, 1),
        "half_load_rounds": half.kept,
        "half_load_noise": half.to_dict(),
        "generator_ceiling": ceiling.summary(),
        "connections": sizes.b1_connections,
        "events": "3 onMessageAdded : 1 onParticipantAdded, each distinct",
        "tuned": tuned,
    }


def _check(result: load.Result, report: Report, phase: str) -> None:
    bad = {k: v for k, v in result.statuses.items() if k != 200}
    if bad or result.failures:
        report.notes.append(f"{phase}: non-200 answers {bad}, {result.failures} failed requests")
