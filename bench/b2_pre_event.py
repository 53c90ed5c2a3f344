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

from bench import jobs, load, noise
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


def _events(stack: Stack, signer: Signer, count: int) -> tuple[list[bytes], list[int]]:
    """`count` distinct pre-events in the MIX proportions, with the ledger seeded to match, and the
    answer each must get."""
    ledger, now = Ledger(stack.redis.client), time.time()
    cycle = [(name, status) for name, weight, status in MIX for _ in range(weight)]
    requests, expected = [], []
    for n in range(count):
        name, status = cycle[n % len(cycle)]
        conversation = sid("CH", signer.run, n)
        address, proxy = customer(signer.run_number, n), PROXIES[n % len(PROXIES)]
        if "identity" in name:
            identity = f"agent-{n}"
            if name == "identity present":
                ledger.member_added(conversation, identity, sid("MB", signer.run, n), now)
            requests.append(signer.participant_add(n, conversation, identity=identity))
        else:
            if name == "pair held here":
                _hold(ledger, conversation, address, proxy, now)
            elif name == "pair held elsewhere":
                _hold(ledger, sid("CH", signer.run, 10**9 + n), address, proxy, now)
            requests.append(signer.participant_add(n, conversation, address=address, proxy=proxy))
        expected.append(status)
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
    requests, expected = _events(stack, signer, per_round * (sizes.b2_rounds + sizes.retries))
    queued_before = jobs.queue(stack.redis.client).count
    offset, wrong = 0, Counter()

    def one() -> tuple[dict, float]:
        nonlocal offset
        part = slice(offset, offset + per_round)
        offset += per_round
        found, cores = {}, []
        for side, target in (("bindery", url), ("bare", bare_url)):
            meter.start()
            found[side] = load.open_loop(target, requests[part], RATE, per_round / RATE)
            cores.append(meter.stop()["others"])
        if found["bindery"].statuses != Counter(expected[part]) or found["bindery"].failures:
            wrong.update({"rounds": 1, "failures": found["bindery"].failures})
        return found, max(cores)

    rounds = noise.quiet_rounds(one, sizes.b2_rounds, sizes.retries)

    def median(side: str, point: str) -> float:
        return statistics.median(r[side].summary()["latency_ms"][point] for r in rounds.kept)

    def pooled(side: str) -> load.Result:
        whole = load.Result()
        for r in rounds.kept:
            whole.answered += r[side].answered
            whole.failures += r[side].failures
            whole.statuses.update(r[side].statuses)
            whole.latencies += r[side].latencies
            whole.elapsed += r[side].elapsed
        return whole

    ours, bare = pooled("bindery"), pooled("bare")
    report.row("achieved rate", ours.rate, bare.rate, "req/s")
    for point in ("p50", "p99", "p99.9", "max"):
        report.row(point, median("bindery", point), median("bare", point), "ms")
    report.target("p99 at 200 req/s (ms)", median("bindery", "p99"), "<= 10")
    report.notes.append(
        f"medians of interleaved rounds of {per_round} requests; pooled p99: Bindery "
        f"{ours.summary()['latency_ms']['p99']} ms, bare {bare.summary()['latency_ms']['p99']} ms"
    )
    report.notes.append(rounds.note("pre-events"))
    if wrong:
        report.notes.append(f"unexpected answers in {wrong['rounds']} rounds ({dict(wrong)})")
    else:
        answered = Counter(expected[:offset])
        report.notes.append(f"answers as expected: {dict(sorted(answered.items()))}")
    enqueued = jobs.queue(stack.redis.client).count - queued_before
    if enqueued:
        report.notes.append(f"{enqueued} jobs were enqueued by pre-events (expected none)")
    report.details = {
        "bindery_rounds": [r["bindery"].summary() for r in rounds.kept],
        "bare_rounds": [r["bare"].summary() for r in rounds.kept],
        "bindery_pooled": ours.summary(),
        "bare_pooled": bare.summary(),
        "noise": rounds.to_dict(),
        "mix": {name: weight / 10 for name, weight, _ in MIX},
    }
