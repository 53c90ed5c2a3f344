"""B7: how the ledger grows. Redis memory per held pair and per conversation, and the time of a
ledger read and write, at two sizes; then a simulated week of conversation lifecycles with the
clock's prune, whose memory must stay flat once the prune window has passed.

Each size is filled in a private redis-server with the records the ledger writes for a held pair
(its conversation record, which lists its pairs, and the pair's record), in pipelines, checked against a
sample the real `Ledger` wrote the same way (same keys, same fields). Reads (`Ledger.pair`) and
writes (`Ledger.bind`, one Lua script each) are then timed on the full ledger, a sample at a time:
their time should not grow with the size. The week uses the real `Ledger` for every write.
"""

from __future__ import annotations

import statistics
import time

import redis

from bench.harness import PrivateRedis
from bench.report import Report
from bench.sizes import Sizes
from workers import keys
from workers.ledger import Ledger

MB = 1024 * 1024
GOAL_MB_PER_MILLION = 300.0
SAMPLE = 2_000
"""Reads and writes timed at each size."""
FILL_BATCH = 5_000


def run(sizes: Sizes) -> Report:
    report = Report("B7", "the ledger at size: Redis memory and time per record, a week of pruning")
    server = PrivateRedis()
    try:
        client = redis.Redis.from_url(server.url)
        for size in sizes.b7_pairs:
            client.flushall()
            _at_size(client, size, report)
        client.flushall()
        _week(client, sizes, report)
    finally:
        server.stop()
    return report


def _sid(prefix: str, n: int) -> str:
    return f"{prefix}{n:032x}"


def _number(n: int) -> str:
    return f"+1555{n % 10**7:07d}"


def _proxy(n: int) -> str:
    return f"+1444{n // 10**7:07d}"


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _fill(
    client: redis.Redis, start: int, stop: int, at: float, records=("conversation", "pair")
) -> None:
    """Held pairs start..stop, one per conversation, laid out as `Ledger.bind` and
    `record_conversation` leave them (`records`: the conversations', the pairs' or both)."""
    for first in range(start, stop, FILL_BATCH):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(stop, first + FILL_BATCH)):
            sid = _sid("CH", n)
            pair = keys.pair_id(_number(n), _proxy(n))
            if "conversation" in records:
                _conversation(pipe, sid, pair, at)
            if "pair" in records:
                pipe.hset(
                    keys.pair(pair),
                    mapping={"holder": sid, "participant_sid": _sid("MB", n), "bound_at": at},
                )
        pipe.execute()


def _conversation(pipe, sid: str, pair: str, at: float) -> None:
    pipe.hset(
        keys.conversation(sid),
        mapping={
            "state": "active",
            "state_at": at,
            "created_at": at,
            "last_activity": at,
            "pairs": pair,
        },
    )


def _same_layout(client: redis.Redis, ledger: Ledger, at: float) -> None:
    """The filled records are what the ledger itself writes (else the figures would lie)."""
    n = 10**9
    sid, pair = _sid("CH", n), keys.pair_id(_number(n), _proxy(n))
    ledger.record_conversation(sid, "active", at)
    ledger.bind(pair, sid, _sid("MB", n), at)
    _fill(client, n + 1, n + 2, at)
    twin_sid, twin_pair = _sid("CH", n + 1), keys.pair_id(_number(n + 1), _proxy(n + 1))
    for real, filled in (
        (keys.conversation(sid), keys.conversation(twin_sid)),
        (keys.pair(pair), keys.pair(twin_pair)),
    ):
        assert set(client.hkeys(real)) == set(client.hkeys(filled)), (real, filled)
    assert client.hget(keys.conversation(sid), "pairs") == pair.encode()


def _at_size(client: redis.Redis, size: int, report: Report) -> None:
    ledger = Ledger(client)
    at = time.time()
    _same_layout(client, ledger, at)
    client.flushall()
    base = _used(client)
    started = time.perf_counter()
    _fill(client, 0, size, at, records=("conversation",))
    conversations = _used(client) - base
    _fill(client, 0, size, at, records=("pair",))
    fill_s = time.perf_counter() - started
    used = _used(client) - base
    per_pair = used / size
    reads = []
    for n in range(0, size, max(1, size // SAMPLE)):
        pair = keys.pair_id(_number(n), _proxy(n))
        began = time.perf_counter()
        ledger.pair(pair)
        reads.append(time.perf_counter() - began)
    writes = []
    for n in range(0, size, max(1, size // SAMPLE)):
        pair = keys.pair_id(_number(n), _proxy(n))
        began = time.perf_counter()
        ledger.bind(pair, _sid("CH", n), _sid("MB", n), at + 1)
        writes.append(time.perf_counter() - began)
    label = f"{size:,} held pairs"
    report.row(f"{label}: Redis memory", used / MB, unit="MB", ratio=False)
    report.row(f"{label}: bytes per pair (with its conversation)", per_pair, unit="B", ratio=False)
    report.row(
        f"{label}: of which the conversation's hash (listing its pair)",
        conversations / size,
        unit="B",
        ratio=False,
    )
    report.row(
        f"{label}: of which the pair's hash", (used - conversations) / size, unit="B", ratio=False
    )
    report.row(f"{label}: pair read p50", statistics.median(reads) * 1e6, unit="us", ratio=False)
    report.row(f"{label}: bind (Lua) p50", statistics.median(writes) * 1e6, unit="us", ratio=False)
    projected = per_pair * 1_000_000 / MB
    report.target(
        f"MB for a million pairs, at the rate of {label}",
        round(projected, 1),
        f"<= {GOAL_MB_PER_MILLION:g}",
    )
    report.details.setdefault("sizes", {})[str(size)] = {
        "used_bytes": used,
        "bytes_per_pair": round(per_pair, 1),
        "bytes_per_conversation_record": round(conversations / size, 1),
        "bytes_per_pair_record": round((used - conversations) / size, 1),
        "fill_s": round(fill_s, 2),
        "read_p50_us": round(statistics.median(reads) * 1e6, 1),
        "read_p99_us": round(sorted(reads)[int(len(reads) * 0.99)] * 1e6, 1),
        "bind_p50_us": round(statistics.median(writes) * 1e6, 1),
        "bind_p99_us": round(sorted(writes)[int(len(writes) * 0.99)] * 1e6, 1),
    }


def _week(client: redis.Redis, sizes: Sizes, report: Report) -> None:
    """Seven simulated days of lifecycles (open, a pair and a member bound, messages, closed),
    the prune run hourly with a one-day window: memory at the end of each day."""
    ledger = Ledger(client)
    per_hour, window = sizes.b7_lifecycles_per_hour, 86400.0
    start = 1_800_000_000.0
    base = _used(client)
    daily = []
    n = 0
    for hour in range(7 * 24):
        now = start + hour * 3600
        for _ in range(per_hour):
            sid, pair = _sid("CH", 10**6 + n), keys.pair_id(_number(n), _proxy(n))
            ledger.record_conversation(sid, "active", now)
            ledger.bind(pair, sid, _sid("MB", n), now)
            ledger.member_added(sid, "agent-1", _sid("MB", 10**7 + n), now)
            ledger.touch(sid, now + 60)
            ledger.set_state(sid, "closed", now + 600)
            n += 1
        ledger.prune(now - window)
        if hour % 24 == 23:
            daily.append(_used(client) - base)
    steady = daily[1:]
    retained = per_hour * 24  # lifecycles inside the window
    report.row(
        f"a week at {per_hour} lifecycles/h, prune window 1 day: memory day 1 / day 7",
        daily[0] / MB,
        daily[-1] / MB,
        unit="MB",
        ratio=False,
    )
    growth = (max(steady) - min(steady)) / max(1, min(steady))
    report.target("memory growth from day 2 to day 7 (fraction)", round(growth, 3), "<= 0.05")
    report.row("bytes per lifecycle kept (the ledger's share)", daily[-1] / retained, unit="B")
    report.details["week"] = {
        "lifecycles": n,
        "lifecycles_per_hour": per_hour,
        "daily_used_bytes": daily,
        "bytes_per_retained_lifecycle": round(daily[-1] / retained, 1),
    }
    report.notes.append(
        "the week counts the ledger only; what RQ's jobs and the de-duplication window keep per "
        "lifecycle is bench/job_memory.py's"
    )
