"""B2: the pre-event `onParticipantAdd`, answered from the ledger, at a steady 200 requests/s.

The ledger is seeded first, so the answers are a realistic mix and each is checked:

- 40% a new identity (200), 10% an identity already in the conversation (409);
- 30% a pair the ledger has never seen (200), 10% a pair this conversation already holds (409);
- 10% a pair held by another, busy conversation (409 `pair_in_use`, nothing enqueued).
"""

from __future__ import annotations

import time
from collections import Counter

from bench import load
from bench.harness import WEB_THREADS, WEB_WORKERS, Stack
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
    _, bare_url = stack.start_bare()
    signer = Signer(url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
    count = int(RATE * sizes.b2_seconds)
    requests, expected = _events(stack, signer, count)
    queued_before = stack.redis.client.llen("rq:queue:" + keys.QUEUE_NAME)

    ours = load.open_loop(url, requests, rate=RATE, duration=sizes.b2_seconds)
    bare = load.open_loop(bare_url, requests, rate=RATE, duration=sizes.b2_seconds)

    ours_p, bare_p = ours.summary()["latency_ms"], bare.summary()["latency_ms"]
    report.row("achieved rate", ours.rate, bare.rate, "req/s")
    report.row("p50", ours_p["p50"], bare_p["p50"], "ms")
    report.row("p99", ours_p["p99"], bare_p["p99"], "ms")
    report.row("p99.9", ours_p["p99.9"], bare_p["p99.9"], "ms")
    report.row("max", ours_p["max"], bare_p["max"], "ms")
    report.target("p99 at 200 req/s (ms)", ours_p["p99"], "<= 10")
    answers = dict(ours.statuses)
    if answers != dict(expected) or ours.failures:
        report.notes.append(f"answers {answers} differ from the expected {dict(expected)}")
    else:
        report.notes.append(f"answers as expected: {dict(sorted(expected.items()))}")
    enqueued = stack.redis.client.llen("rq:queue:" + keys.QUEUE_NAME) - queued_before
    if enqueued:
        report.notes.append(f"{enqueued} jobs were enqueued by pre-events (expected none)")
    report.details = {
        "bindery": ours.summary(),
        "bare": bare.summary(),
        "mix": {name: weight / 10 for name, weight, _ in MIX},
    }
