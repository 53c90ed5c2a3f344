"""`bench/run --self-check`: the benchmarks' own parts, checked in seconds without pytest.

Each check raises on failure; the command prints one line per check and exits non-zero if any
failed.
"""

from __future__ import annotations

import time
import traceback
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from bench import adds, jobs, load
from bench.harness import Stack, memory_mb
from bench.signing import Signer
from emulator.defaults import DEFAULT_AUTH_TOKEN


def check_percentiles() -> None:
    p = load.percentiles([i / 1000 for i in range(1, 1001)])
    assert p["p50"] == 0.5 and p["p99"] == 0.99 and p["max"] == 1.0, p


def check_signatures() -> None:
    signer = Signer("127.0.0.1:8000", DEFAULT_AUTH_TOKEN)
    for raw in signer.post_events(3) + [signer.participant_add(0, "CH" + "0" * 32, "agent")]:
        head, body = raw.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        path = head.split(b" ")[1].decode()
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        url = f"http://{headers['Host']}{path}"
        assert int(headers["Content-Length"]) == len(body)
        assert RequestValidator(DEFAULT_AUTH_TOKEN).validate(
            url, params, headers["X-Twilio-Signature"]
        ), "signature does not validate"


def check_stack() -> None:
    """Real processes: signed webhooks accepted, a no-op and an add through a real worker."""
    stack = Stack()
    try:
        url = stack.start_web()
        signer = Signer(url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
        events = signer.post_events(4)
        pre = [signer.participant_add(9, "CH" + "1" * 32, identity="agent-9")]
        result = load.open_loop(url, events + pre, rate=50, duration=0.1)
        assert dict(result.statuses) == {200: 5}, result.summary()
        assert jobs.queue(stack.redis.client).count == 4, "every post-event is one job"
        stack.redis.client.delete("rq:queue:bindery")

        _, trivial = stack.start_trivial()
        ceiling = load.closed_loop(trivial, events, connections=8, duration=0.5, warmup=0.1)
        assert ceiling.rate > 1000, ceiling.summary()

        stack.start_workers(1)
        noop = jobs.enqueue_bulk(
            stack.redis.client, stack.settings(), "bench.noop.noop", [{}] * 3, "noop"
        )
        assert jobs.outcomes(jobs.wait(stack.redis.client, noop, 30)) == {"noop": 3}
        added = adds.run_bindery(stack, adds.prepare(stack, "identity", 2), timeout=30)
        assert added["outcomes"] == {"added": 2} and added["calls_per_add"] == 1.0, added
        assert memory_mb(stack.bindery_pids())["rss_mb"] > 0
    finally:
        stack.stop()


CHECKS = (check_percentiles, check_signatures, check_stack)


def run() -> int:
    failed = 0
    for check in CHECKS:
        started = time.monotonic()
        try:
            check()
        except Exception:  # noqa: BLE001 - report every check, then fail
            failed += 1
            print(f"FAIL {check.__name__}")
            traceback.print_exc()
            continue
        print(f"ok   {check.__name__} ({time.monotonic() - started:.1f} s)")
    return 1 if failed else 0
