"""Participant-add workloads (B3, B4, B5): the same adds run through Bindery and, as the baseline,
straight at the emulator through the official client with as many calls in flight.

Three kinds, because their minimum number of Twilio calls differs by design:

- `identity`: a chat participant: one call (the create);
- `pair`: an SMS pair the ledger has never seen: Bindery reads ParticipantConversations first (it
  verifies unknown pairs), then creates: two calls;
- `known_pair`: an SMS pair the ledger already knows is free (a returning customer whose earlier
  conversation Bindery saw close): one call;
- `identity_burst`: four chat participants added to one conversation at once (a team joining):
  one call each, but the conversation's lock serializes them.

Other than in a burst, each add goes to a conversation of its own, so no two wait on the same lock.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from bench import jobs
from bench.harness import API_TOKEN, Stack, calls_between, errors_between, memory_mb
from bench.load import percentiles
from bench.signing import PROXIES
from workers import keys
from workers.ledger import NO_FENCE, Ledger

KINDS = ("identity", "pair", "known_pair", "identity_burst")
BURST = 4
"""Adds per conversation in an `identity_burst`."""
DUPLICATE_CODES = ("50416", "50437", "50433")
"""Twilio's answers to an attempted duplicate: pair held elsewhere, pair or identity already here."""

_numbers = itertools.count(random.randrange(10**6) * 1000)


@dataclass(frozen=True)
class Add:
    conversation_sid: str
    identity: str = ""
    address: str = ""
    proxy_address: str = ""

    def body(self) -> dict:
        if self.identity:
            return {"identity": self.identity}
        return {"address": self.address, "proxy_address": self.proxy_address}


def prepare(stack: Stack, kind: str, count: int) -> list[Add]:
    """`count` adds of `kind`, to new conversations; known pairs are taught to the ledger."""
    if kind == "identity_burst":
        conversations = stack.emulator.create_conversations(max(1, count // BURST))
        return [
            Add(sid, identity=f"agent-{next(_numbers)}")
            for sid in conversations
            for _ in range(BURST)
        ]
    conversations = stack.emulator.create_conversations(count)
    adds = []
    for sid in conversations:
        n = next(_numbers)
        if kind == "identity":
            adds.append(Add(sid, identity=f"agent-{n}"))
        else:
            address = f"+1{300 + n // 10**7 % 600:03d}{n % 10**7:07d}"
            adds.append(Add(sid, address=address, proxy_address=PROXIES[n % len(PROXIES)]))
    if kind == "known_pair":
        ledger = Ledger(stack.redis.client)
        for add in adds:
            pair = keys.pair_id(add.address, add.proxy_address)
            ledger.mark_free(pair, time.time(), NO_FENCE, expected_pending="", marker="")
    return adds


def _submit(web_url: str, adds: list[Add], threads: int = 8) -> list[str]:
    """POST each add to Bindery's API; returns the job ids."""

    def post(part: list[Add]) -> list[str]:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {API_TOKEN}"
        ids = []
        for add in part:
            url = f"{web_url}/api/v1/conversations/{add.conversation_sid}/participants"
            response = session.post(url, json=add.body(), timeout=30)
            response.raise_for_status()
            ids.append(response.json()["job_id"])
        return ids

    parts = [adds[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        return [job_id for part in pool.map(post, parts) for job_id in part]


class MemorySampler:
    """Peak summed RSS and PSS of Bindery's processes, sampled in a thread while it runs."""

    def __init__(self, stack: Stack, interval: float = 0.5):
        self.stack, self.interval = stack, interval
        self.peak = {"rss_mb": 0.0, "pss_mb": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> dict:
        now = memory_mb(self.stack.bindery_pids())
        for name, value in now.items():
            self.peak[name] = max(self.peak[name], value)
        return now

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def run_bindery(stack: Stack, adds: list[Add], timeout: float = 600) -> dict:
    """Submit the adds through the API and wait for the workers; figures from the jobs' times and
    the emulator's call counts."""
    before = stack.emulator.stats()
    job_ids = _submit(stack.web_url, adds)
    finished = jobs.wait(stack.redis.client, job_ids, timeout)
    after = stack.emulator.stats()
    timing = jobs.timing(finished)
    calls = calls_between(before, after)
    errors = errors_between(before, after)
    queued = percentiles(timing["latencies"], points=(50, 99))
    service = percentiles(timing["service"], points=(50, 99))
    return {
        "adds": len(adds),
        "ops_per_s": round(timing["rate"], 2),
        "seconds": round(timing["span_s"], 2),
        "calls": calls,
        "calls_per_add": round(sum(calls.values()) / len(adds), 3),
        "errors": errors,
        "duplicate_attempts": sum(errors.get(code, 0) for code in DUPLICATE_CODES),
        "outcomes": jobs.outcomes(finished),
        "job_ms": {k: round(v * 1000, 1) for k, v in service.items()},
        "enqueued_to_done_ms_in_burst": {k: round(v * 1000, 1) for k, v in queued.items()},
    }


def run_direct(stack: Stack, adds: list[Add], in_flight: int) -> dict:
    """The baseline: the same creates, `in_flight` at a time, through the official client."""
    client = stack.emulator.client()
    v1 = client.conversations.v1

    def create(part: list[Add]) -> None:
        for add in part:
            participants = v1.conversations(add.conversation_sid).participants
            if add.identity:
                participants.create(identity=add.identity)
            else:
                participants.create(
                    messaging_binding_address=add.address,
                    messaging_binding_proxy_address=add.proxy_address,
                )

    before = stack.emulator.stats()
    parts = [adds[i::in_flight] for i in range(in_flight)]
    started = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(create, parts))
    elapsed = time.perf_counter() - started
    after = stack.emulator.stats()
    calls = calls_between(before, after)
    return {
        "adds": len(adds),
        "ops_per_s": round(len(adds) / elapsed, 2),
        "seconds": round(elapsed, 2),
        "calls": calls,
        "calls_per_add": round(sum(calls.values()) / len(adds), 3),
        "errors": errors_between(before, after),
    }
