"""Redis bytes per conversation lifecycle that RQ's jobs and the de-duplication window keep.

Run: `.venv/bin/python -m bench.job_memory [--lifecycles 300] [--json out.json]` (about a minute).
A private redis-server, the emulator, `bindery web` and `bindery worker`, as the benchmarks start
them; each lifecycle goes through them as in production: the customer and the agent each added
twice through the API (same idempotency key: one job each), their `onParticipantAdded` and the
conversation's `onConversationAdded` post-events (signed webhooks), the close asked twice through
the API and its `onConversationStateUpdated`. Once every job has run, Redis's `used_memory` and the
`MEMORY USAGE` of each key family are read, and the keys still alive after the short result TTL
(what a day of traffic keeps) are counted apart; then those short-lived keys are deleted (as their
TTLs would), and what is left of the families is deleted too, the ledger's last: the `used_memory`
each deletion frees is what a day of traffic keeps in Redis's own terms (values, keys, the expiry
table's entries; not the hash tables' buckets, which Redis shrinks later, about 8 to 16 bytes a
key). The ledger's own records are B7's (and pruned by the clock); they are shown here for scale
only.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.harness import API_TOKEN, Stack
from bench.signing import Signer, iso
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_SERVICE_SID

FAMILIES = (
    ("rq job hashes", "rq:job:"),
    ("rq results", "rq:results:"),
    ("de-duplication keys", "bindery:seen:"),
    ("de-duplication keys", "bindery:dedup:"),
    ("rq registries", "rq:finished:"),
    ("rq registries", "rq:failed:"),
    ("outcome counts per minute", "bindery:outcomes:"),
    ("conflicts", "bindery:conflicts"),
    ("ledger (B7's)", "bindery:conv:"),
    ("ledger (B7's)", "bindery:pair:"),
    ("ledger (B7's)", "bindery:ended"),
)
LONG_LIVED = 3600
"""Seconds of TTL past which a key counts as kept for the day (no TTL counts too)."""


def _lifecycle(stack: Stack, signer: Signer, api: requests.Session, n: int, sid: str) -> None:
    base = stack.web_url
    customer, proxy = f"+1555{n:07d}", f"+1800{n % 10:07d}"
    for body in (
        {"address": customer, "proxy_address": proxy, "idempotency_key": f"c-{n}"},
        {"identity": f"agent-{n}", "idempotency_key": f"a-{n}"},
    ):
        for _ in range(2):  # asked twice: one job
            answer = api.post(f"{base}/api/v1/conversations/{sid}/participants", json=body)
            assert answer.status_code == 202, answer.text
    now = time.time()
    common = {
        "AccountSid": DEFAULT_ACCOUNT_SID,
        "ChatServiceSid": DEFAULT_SERVICE_SID,
        "ConversationSid": sid,
    }
    events = [
        {**common, "EventType": "onConversationAdded", "State": "active", "DateCreated": iso(now)},
        {
            **common,
            "EventType": "onParticipantAdded",
            "ParticipantSid": f"MB{n:032x}",
            "MessagingBinding.Address": customer,
            "MessagingBinding.ProxyAddress": proxy,
            "DateCreated": iso(now),
        },
        {
            **common,
            "EventType": "onParticipantAdded",
            "ParticipantSid": f"MB{n + 10**9:032x}",
            "Identity": f"agent-{n}",
            "DateCreated": iso(now),
        },
    ]
    for i, params in enumerate(events):
        _send(stack, signer, params, f"{sid}-{i}")
    for _ in range(2):
        answer = api.post(
            f"{base}/api/v1/conversations/{sid}/state",
            json={"state": "closed", "idempotency_key": f"close-{n}"},
        )
        assert answer.status_code == 202, answer.text
    closed = {
        **common,
        "EventType": "onConversationStateUpdated",
        "StateFrom": "active",
        "StateTo": "closed",
        "StateUpdated": iso(time.time()),
    }
    _send(stack, signer, closed, f"{sid}-closed")


def _send(stack: Stack, signer: Signer, params: dict, token: str) -> None:
    raw = signer.request("/twilio/conversations/post", params, token)
    head, body = raw.split(b"\r\n\r\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    headers.pop("Host")
    answer = requests.post(
        f"{stack.web_url}/twilio/conversations/post", data=body, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text


def _families(client) -> tuple[dict, dict]:
    """Bytes per family, and (for scale) the bytes of each key no family names."""
    found: dict[str, dict] = defaultdict(lambda: {"keys": 0, "bytes": 0, "kept_bytes": 0})
    others: dict[str, int] = {}
    now = time.time()
    for key in client.scan_iter(count=1000):
        name = key.decode()
        family = next((f for f, prefix in FAMILIES if name.startswith(prefix)), "other")
        size = client.memory_usage(key, samples=0) or 0
        entry = found[family]
        entry["keys"] += 1
        entry["bytes"] += size
        entry["kept_bytes"] += round(size * _kept_share(client, key, now))
        if family == "other":
            others[name] = size
    return dict(found), others


def _kept_share(client, key: bytes, now: float) -> float:
    """The share of a key kept past LONG_LIVED: all of it or none by its TTL; for RQ's registries
    (sorted sets without a TTL, scored by when each entry expires) the share of entries scored
    past it, as RQ's own cleanup drops the others."""
    ttl = client.ttl(key)
    if 0 <= ttl <= LONG_LIVED:
        return 0.0
    if ttl < 0 and key.startswith((b"rq:finished:", b"rq:failed:")):
        total = client.zcard(key)
        kept = client.zcount(key, now + LONG_LIVED, "+inf")
        return kept / total if total else 0.0
    return 1.0


def _used(client) -> int:
    """Redis's `used_memory` less its clients' buffers (each connection of the web app's and the
    workers' pools holds some 20 KB, however much is stored)."""
    memory = client.info("memory")
    return int(memory["used_memory"]) - int(memory.get("mem_clients_normal", 0))


def _delete(client, prefixes: tuple[str, ...]) -> None:
    for key in client.scan_iter(count=1000):
        if key.decode().startswith(prefixes):
            client.delete(key)


def _drop_short_lived(client, now: float) -> None:
    """What the short TTLs and RQ's registry cleanup would have removed by the next hour, removed
    now: what is left is what a day of traffic keeps."""
    for key in client.scan_iter(count=1000):
        ttl = client.ttl(key)
        if 0 <= ttl <= LONG_LIVED:
            client.delete(key)
        elif ttl < 0 and key.startswith((b"rq:finished:", b"rq:failed:")):
            client.zremrangebyscore(key, "-inf", now + LONG_LIVED)


def measure(lifecycles: int) -> dict:
    stack = Stack()
    try:
        stack.start_web()
        stack.start_workers(2)
        client = stack.redis.client
        sids = stack.emulator.create_conversations(lifecycles)
        signer = Signer(stack.web_url.split("://", 1)[1], DEFAULT_AUTH_TOKEN)
        before = _used(client)

        def run(part: list[tuple[int, str]]) -> None:
            api = requests.Session()
            api.headers["Authorization"] = f"Bearer {API_TOKEN}"
            for n, sid in part:
                _lifecycle(stack, signer, api, n, sid)

        numbered = list(enumerate(sids))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(run, [numbered[i::4] for i in range(4)]))
        _wait_idle(client)
        after = _used(client)
        families, others = _families(client)
        _drop_short_lived(client, time.time())
        kept = _used(client)
        _delete(client, tuple(p for f, p in FAMILIES if not f.startswith("ledger")))
        kept_ledger = _used(client)
        _delete(client, tuple(p for f, p in FAMILIES if f.startswith("ledger")))
        bare = _used(client)
    finally:
        stack.stop()
    jobs_share = sum(
        v["bytes"] for k, v in families.items() if k in ("rq job hashes", "rq results")
    ) + families.get("de-duplication keys", {}).get("bytes", 0)
    kept_share = sum(v["kept_bytes"] for k, v in families.items() if not k.startswith("ledger"))
    return {
        "lifecycles": lifecycles,
        "used_memory_growth_per_lifecycle": round((after - before) / lifecycles),
        "used_memory_kept_per_lifecycle_excluding_ledger": round((kept - kept_ledger) / lifecycles),
        "used_memory_kept_per_lifecycle_ledger": round((kept_ledger - bare) / lifecycles),
        "jobs_and_dedup_bytes_per_lifecycle": round(jobs_share / lifecycles),
        "kept_past_an_hour_per_lifecycle_excluding_ledger": round(kept_share / lifecycles),
        "families_per_lifecycle": {
            k: {
                "keys": round(v["keys"] / lifecycles, 2),
                "bytes": round(v["bytes"] / lifecycles),
                "kept_bytes": round(v["kept_bytes"] / lifecycles),
            }
            for k, v in sorted(families.items())
        },
        "other_keys_bytes": dict(sorted(others.items(), key=lambda item: -item[1])[:12]),
    }


def _wait_idle(client, timeout: float = 300) -> None:
    from rq import Queue

    queue = Queue("bindery", connection=client)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = queue.count + queue.started_job_registry.count + queue.scheduled_job_registry.count
        if not busy:
            return
        time.sleep(0.5)
    raise AssertionError("jobs still running")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=300)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    result = measure(args.lifecycles)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
