"""B2: the pre-event `onParticipantAdd`, answered from the ledger, at a steady 200 requests/s.

The ledger is seeded first, so the answers are a realistic mix and each is checked:

- 40% a new identity (200), 10% an identity already in the conversation (409);
- 30% a pair the ledger has never seen (200), 10% a pair this conversation already holds (409);
- 10% a pair held by another, busy conversation (409 `pair_in_use`, nothing enqueued).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

from bench import jobs, load
from bench.harness import WEB_THREADS, WEB_WORKERS, CpuMeter, Stack
from bench.report import Report
from bench.signing import PROXIES, Signer, customer, sid
from bench.sizes import Sizes
from emulator.defaults import DEFAULT_AUTH_TOKEN
from workers import keys
from workers.ledger import Ledger

RATE = 200.0
MIX = (
    ("new identity", 4, 200),
    ("identity present", 1, 409),
    ("new pair", 3, 200),
    ("pair held here", 1, 409),
    ("pair held elsewhere", 1, 409),
)


def run(sizes: Sizes) -> Report:
    report = Report(
        "B2",
        f"pre-event onParticipantAdd at {RATE:.0f} req/s, gunicorn {WEB_WORKERS}x{WEB_THREADS}",
    )
    stack = Stack(emulator=False)
    try:
        _measure(stack, sizes, report)
    finally:
        stack.stop()
    return report


def _events(stack: Stack, signer: Signer, count: int) -> tuple[list[bytes], Counter]:
    """`count` distinct pre-events in the MIX proportions, with the ledger seeded to match."""
    ledger, now = Ledger(stack.redis.client), time.time()
    cycle = [(name, status) for name, weight, status in MIX for _ in range(weight)]
    requests, expected = [], Counter()
    for n in range(count):
        name, status = cycle[n % len(cycle)]
        conversation = sid("CH", signer.run, n)
        address, proxy = customer(signer.run_number, n), PROXIES[n % len(PROXIES)]
        if "identity" in name:
            identity = f"agent-{n}"
            if name == "identity present":
                ledger.add_identity(conversation, identity)
            requests.append(signer.participant_add(n, conversation, identity=identity))
        else:
            if name == "pair held here":
                _hold(ledger, conversation, address, proxy, now)
            elif name == "pair held elsewhere":
                _hold(ledger, sid("CH", signer.run, 10**9 + n), address, proxy, now)
            requests.append(signer.participant_add(n, conversation, address=address, proxy=proxy))
        expected[status] += 1
    return requests, expected


def _hold(ledger: Ledger, conversation: str, address: str, proxy: str, now: float) -> None:
    ledger.record_conversation(conversation, "active", now)
    ledger.touch(conversation, now)
    ledger.bind(keys.pair_id(address, proxy), conversation, "", now)


def _measure(stack: Stack, sizes: Sizes, report: Report) -> None:
    url = stack.start_web()
    bare_process, bare_url = stack.start_bare()
    meter = CpuMeter({**stack.cpu_parts(), "bare": bare_process.tree})
    signer = Signer(url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
    per_round = int(RATE * sizes.b2_seconds / sizes.b2_rounds)
    requests, expected = _events(stack, signer, per_round * sizes.b2_rounds)
    queued_before = jobs.queue(stack.redis.client).count

    rounds: dict[str, list[load.Result]] = {"bindery": [], "bare": []}
    others: dict[str, list[float]] = {"bindery": [], "bare": []}
    for n in range(sizes.b2_rounds):
        part = requests[n * per_round : (n + 1) * per_round]
        for side, target in (("bindery", url), ("bare", bare_url)):
            meter.start()
            rounds[side].append(load.open_loop(target, part, rate=RATE, duration=per_round / RATE))
            others[side].append(meter.stop()["others"])

    def median(side: str, point: str) -> float:
        return statistics.median(r.summary()["latency_ms"][point] for r in rounds[side])

    def pooled(side: str) -> load.Result:
        whole = load.Result()
        for r in rounds[side]:
            whole.answered += r.answered
            whole.failures += r.failures
            whole.statuses.update(r.statuses)
            whole.latencies += r.latencies
            whole.elapsed += r.elapsed
        return whole

    ours, bare = pooled("bindery"), pooled("bare")
    report.row("achieved rate", ours.rate, bare.rate, "req/s")
    for point in ("p50", "p99", "p99.9", "max"):
        report.row(point, median("bindery", point), median("bare", point), "ms")
    report.row(
        "CPU cores other users took meanwhile",
        statistics.median(others["bindery"]),
        statistics.median(others["bare"]),
        ratio=False,
    )
    report.target("p99 at 200 req/s (ms)", median("bindery", "p99"), "<= 10")
    if sizes.b2_rounds > 1:
        report.notes.append(
            f"medians of {sizes.b2_rounds} interleaved rounds of {per_round} requests; "
            f"pooled p99: Bindery {ours.summary()['latency_ms']['p99']} ms, "
            f"bare {bare.summary()['latency_ms']['p99']} ms"
        )
    answers = dict(ours.statuses)
    if answers != dict(expected) or ours.failures:
        report.notes.append(f"answers {answers} differ from the expected {dict(expected)}")
    else:
        report.notes.append(f"answers as expected: {dict(sorted(expected.items()))}")
    enqueued = jobs.queue(stack.redis.client).count - queued_before
    if enqueued:
        report.notes.append(f"{enqueued} jobs were enqueued by pre-events (expected none)")
    report.details = {
        "bindery_rounds": [r.summary() for r in rounds["bindery"]],
        "bare_rounds": [r.summary() for r in rounds["bare"]],
        "bindery_pooled": ours.summary(),
        "bare_pooled": bare.summary(),
        "others_cpu_cores": others,
        "mix": {name: weight / 10 for name, weight, _ in MIX},
    }
