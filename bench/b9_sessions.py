"""B9: masked-number sessions. Sessions (two customers each, a rider and a driver, each given a
proxy number by Bindery's allocation) created through `POST /api/v1/sessions` against a 100-number
pool and 10,000 customers, with 100 ms added to every emulator call, in bursts from many threads
at once; a fifth of the sessions take one of 50 busy drivers, so customers overlap.

The baseline is the least time Twilio's calls need: the calls a session cannot do without (the
conversation's create and one participant create per customer: 3) x 100 ms, divided by the calls
Bindery can have in flight (one per worker process, each job's calls being sequential). The same
sessions are also made straight at the emulator with as many threads and a plan of distinct pairs
fixed beforehand (no allocation, no ledger, no verification), for a measured figure.

Checked, not assumed: every session open; no (customer, proxy) pair chosen twice among them, as
the sessions report them and as the emulator holds them; the emulator's count of duplicate binding
attempts (50416, 50437, 50433) over the run. Allocation p99 is the allocation step alone, timed in
this process against the stack's Redis (the same Lua step the workers run), at the pool's load of
the run.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.harness import API_TOKEN, Stack, calls_between, errors_between
from bench.load import percentiles
from bench.report import Report
from bench.sizes import Sizes

LATENCY_MS = 100
PROCESSES = 4
POOL = "b9"
POOL_SIZE = 100
CUSTOMERS = 10_000
BUSY_DRIVERS = 50
SUBMITTERS = 16
"""Threads posting session creates at once (the app's burst)."""
LEAST_CALLS_PER_SESSION = 3
"""The conversation's create and one participant create per customer."""
DUPLICATE_CODES = ("50416", "50437", "50433")


def run(sizes: Sizes) -> Report:
    report = Report(
        "B9",
        f"sessions: {POOL_SIZE}-number pool, {CUSTOMERS:,} customers, emulator +{LATENCY_MS} ms "
        f"per call, {PROCESSES} worker processes",
    )
    stack = Stack()
    try:
        _measure(stack, sizes.b9_sessions, report)
    finally:
        stack.stop()
    return report


def numbers() -> list[str]:
    return [f"+1415555{n:04d}" for n in range(POOL_SIZE)]


def plan(count: int, seed: int = 9) -> list[tuple[str, str]]:
    """(rider, driver) of each session: riders from the 10,000; a fifth of the drivers from 50
    busy ones, so the same customers are in several sessions at once."""
    rng = random.Random(seed)
    customers = [f"+1555{n:07d}" for n in range(CUSTOMERS)]
    busy = customers[:BUSY_DRIVERS]
    trips = []
    for _ in range(count):
        rider = rng.choice(customers[BUSY_DRIVERS:])
        driver = rng.choice(busy) if rng.random() < 0.2 else rng.choice(customers[BUSY_DRIVERS:])
        while driver == rider:
            driver = rng.choice(customers[BUSY_DRIVERS:])
        trips.append((rider, driver))
    return trips


class Api:
    def __init__(self, url: str):
        self.url = url + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {API_TOKEN}"
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=SUBMITTERS * 2))

    def put_pool(self, name: str, pool_numbers: list[str]) -> None:
        response = self.http.put(
            f"{self.url}/pools/{name}",
            json={"numbers": [{"number": n} for n in pool_numbers]},
            timeout=30,
        )
        if response.status_code >= 300:
            raise RuntimeError(f"pool: {response.status_code} {response.text}")

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        """Sent again when a kept-alive connection was closed under it (safe: creates carry an
        idempotency key)."""
        for attempt in range(3):
            try:
                return self.http.request(method, url, timeout=30, **kwargs)
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    def create(self, rider: str, driver: str, key: str) -> str:
        response = self._send(
            "post",
            f"{self.url}/sessions",
            json={
                "pool": POOL,
                "participants": [{"address": rider}, {"address": driver}],
                "idempotency_key": key,
            },
        )
        if response.status_code != 202:
            raise RuntimeError(f"session create: {response.status_code} {response.text}")
        return response.json()["session_id"]

    def get(self, session_id: str) -> dict:
        return self._send("get", f"{self.url}/sessions/{session_id}").json()


def _wait_open(api: Api, ids: list[str], timeout: float) -> tuple[dict[str, dict], float]:
    """Every session's final answer, and when the last one settled (perf_counter)."""
    done: dict[str, dict] = {}
    last = time.perf_counter()
    deadline = time.monotonic() + timeout
    while len(done) < len(ids):
        pending = [i for i in ids if i not in done]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(api.get, pending))
        for session_id, answer in zip(pending, answers, strict=True):
            if answer.get("status") in ("open", "failed", "closed"):
                done[session_id] = answer
                last = time.perf_counter()
        if len(done) < len(ids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ids) - len(done)} sessions still pending")
            time.sleep(0.05)
    return done, last


def _bindery(stack: Stack, trips: list[tuple[str, str]]) -> dict:
    api = Api(stack.web_url)
    api.put_pool(POOL, numbers())
    stack.emulator.faults(latency_ms=LATENCY_MS)
    before = stack.emulator.stats()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            ids = list(
                pool.map(
                    lambda item: api.create(item[1][0], item[1][1], f"b9-{item[0]}"),
                    enumerate(trips),
                )
            )
        accepted = time.perf_counter() - started
        answers, last = _wait_open(api, ids, timeout=60 + len(trips))
    finally:
        stack.emulator.faults()
    after = stack.emulator.stats()
    elapsed = last - started
    statuses = Counter(a["status"] for a in answers.values())
    calls = calls_between(before, after)
    errors = errors_between(before, after)
    chosen = Counter(
        (p["address"], p["proxy_address"])
        for a in answers.values()
        if a["status"] == "open"
        for p in a["participants"]
        if p.get("address")
    )
    twice = sum(n - 1 for n in chosen.values() if n > 1)
    held = _pairs_in_twilio(
        stack, [a["conversation_sid"] for a in answers.values() if a.get("conversation_sid")]
    )
    held_twice = sum(n - 1 for n in held.values() if n > 1)
    return {
        "sessions": len(trips),
        "sessions_per_s": round(len(trips) / elapsed, 2),
        "seconds": round(elapsed, 2),
        "accepted_s": round(accepted, 2),
        "statuses": dict(statuses),
        "errors_seen": sorted({a.get("error") or "" for a in answers.values()} - {""})[:5],
        "calls": calls,
        "calls_per_session": round(sum(calls.values()) / len(trips), 3),
        "errors": errors,
        "duplicate_attempts": sum(errors.get(c, 0) for c in DUPLICATE_CODES),
        "pairs_chosen_twice": twice,
        "pairs_held_twice_in_twilio": held_twice,
        "pairs_checked": sum(chosen.values()),
        "pairs_in_twilio": sum(held.values()),
    }


def _pairs_in_twilio(stack: Stack, conversation_sids: list[str]) -> Counter:
    """Every (address, proxy) pair of the sessions' conversations, as the emulator has them."""
    v1 = stack.emulator.client().conversations.v1

    def pairs(sid: str) -> list[tuple[str, str]]:
        found = []
        for participant in v1.conversations(sid).participants.list():
            binding = participant.messaging_binding or {}
            if binding.get("address") and binding.get("proxy_address"):
                found.append((binding["address"], binding["proxy_address"]))
        return found

    with ThreadPoolExecutor(8) as pool:
        return Counter(p for part in pool.map(pairs, conversation_sids) for p in part)


def _direct(stack: Stack, trips: list[tuple[str, str]]) -> dict:
    """The same sessions straight at the emulator, `PROCESSES` at a time, on a plan of distinct
    pairs made beforehand: the conversation, then each customer on the next number they do not
    use yet."""
    pool_numbers = numbers()
    given: dict[str, int] = Counter()
    planned = []
    for rider, driver in trips:
        pair = []
        for customer in (rider, driver):
            # A fresh offset per customer: the account is reset, so nothing else holds these.
            pair.append((customer, pool_numbers[(given[customer] + hash(customer)) % POOL_SIZE]))
            given[customer] += 1
        planned.append(pair)
    v1 = stack.emulator.client().conversations.v1

    def make(part: list[list[tuple[str, str]]]) -> None:
        for pair in part:
            conversation = v1.conversations.create(friendly_name="b9 direct")
            for address, proxy in pair:
                conversation.participants.create(
                    messaging_binding_address=address, messaging_binding_proxy_address=proxy
                )

    stack.emulator.reset()
    stack.emulator.faults(latency_ms=LATENCY_MS)
    before = stack.emulator.stats()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(PROCESSES) as pool:
            list(pool.map(make, [planned[i::PROCESSES] for i in range(PROCESSES)]))
    finally:
        stack.emulator.faults()
    elapsed = time.perf_counter() - started
    after = stack.emulator.stats()
    calls = calls_between(before, after)
    return {
        "sessions": len(trips),
        "sessions_per_s": round(len(trips) / elapsed, 2),
        "seconds": round(elapsed, 2),
        "calls": calls,
        "errors": errors_between(before, after),
    }


def allocation_probe(stack: Stack, samples: int, seed: int = 99) -> dict:
    """The allocation step alone (`workers.allocation.allocate`: the candidates read, then the one
    Lua step that reserves a pair), timed in this process against the stack's Redis while the
    run's sessions hold their numbers; each reservation let go again at once."""
    from workers import allocation
    from workers.runtime import Runtime

    rt = Runtime.build(stack.settings(), stack.redis.client, calls_twilio=False)
    rng = random.Random(seed)
    times = []
    for i in range(samples):
        customer = f"+1555{rng.randrange(CUSTOMERS):07d}"
        session_id = f"b9-probe-{i}"
        started = time.perf_counter()
        number = allocation.allocate(rt, session_id, POOL, customer, rng=rng)
        times.append(time.perf_counter() - started)
        allocation.release(stack.redis.client, session_id, customer, number)
    found = percentiles(times, points=(50, 99))
    return {
        "samples": samples,
        "p50_ms": round(found["p50"] * 1000, 3),
        "p99_ms": round(found["p99"] * 1000, 3),
        "max_ms": round(found["max"] * 1000, 3),
    }


def _measure(stack: Stack, count: int, report: Report) -> None:
    stack.start_web()
    stack.start_workers(PROCESSES)
    trips = plan(count)
    ours = _bindery(stack, trips)
    allocation = allocation_probe(stack, max(300, count))
    direct = _direct(stack, trips)
    least_s = len(trips) * LEAST_CALLS_PER_SESSION * LATENCY_MS / 1000 / PROCESSES
    made = sum(ours["calls"].values())
    least_made_s = made * LATENCY_MS / 1000 / PROCESSES
    rate = ours["sessions_per_s"]

    report.row("sessions/s (vs the least time Twilio's calls need)", rate, len(trips) / least_s)
    report.row("sessions/s (vs the same made directly)", rate, direct["sessions_per_s"])
    report.row(
        "sessions/s (vs the least time for the calls Bindery made)", rate, len(trips) / least_made_s
    )
    report.row(
        "Twilio calls per session", ours["calls_per_session"], LEAST_CALLS_PER_SESSION, ratio=False
    )
    report.row(
        "allocation p50 / p99",
        f"{allocation['p50_ms']:.2f} / {allocation['p99_ms']:.2f}",
        unit="ms",
    )
    report.row(
        "sessions open / asked for", ours["statuses"].get("open", 0), ours["sessions"], ratio=False
    )
    report.row("duplicate attempts (50416/50437/50433)", ours["duplicate_attempts"], ratio=False)
    report.row(
        "pairs chosen twice (sessions / Twilio)",
        f"{ours['pairs_chosen_twice']} / {ours['pairs_held_twice_in_twilio']}",
        ratio=False,
    )

    report.target("duplicate attempts", ours["duplicate_attempts"], "<= 0")
    report.target(
        "pairs chosen twice (sessions + Twilio)",
        ours["pairs_chosen_twice"] + ours["pairs_held_twice_in_twilio"],
        "<= 0",
    )
    report.target("sessions not open", ours["sessions"] - ours["statuses"].get("open", 0), "<= 0")
    report.notes.append(
        f"least time = sessions x {LEAST_CALLS_PER_SESSION} calls (the conversation's create and "
        f"one participant create per customer) x {LATENCY_MS} ms / {PROCESSES} calls in flight "
        f"(one per worker process) = {least_s:.1f} s for {len(trips)} sessions; for the calls "
        f"Bindery made ({made}): {least_made_s:.1f} s"
    )
    report.notes.append(
        "allocation: the candidates read (the pool's numbers, the customer's place and sticky "
        "number) and the one Lua step that reserves the pair, timed from the benchmark process "
        f"({allocation['samples']} allocations while the run's sessions hold their numbers)"
    )
    report.details = {
        "bindery": ours,
        "direct": direct,
        "allocation": allocation,
        "least_seconds": round(least_s, 2),
        "processes": {"web": "bindery web (2 x 4 threads)", "workers": PROCESSES},
        "submitters": SUBMITTERS,
    }
