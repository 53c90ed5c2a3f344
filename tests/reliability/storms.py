"""The fault storm: API requests and signed webhooks while the emulator answers 429 bursts, 500s and
added latency, then quiet. Run once per session (the `fault_storm` fixture): the Twilio-fault tests
check what it did to Twilio, the security tests check what it left in Redis and in the logs."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.conftest import new_number
from tests.integration.stack import API_TOKEN
from tests.reliability.conftest import client_for
from tests.reliability.harness import ReliabilityStack, participants_of, signed_post

MAX_RETRIES = 6
PHASES = [  # (seconds after the storm starts, faults)
    (0.0, {"error_rate_429": 0.6, "latency_ms": 20}),  # a 429 burst
    (3.0, {"error_rate_500": 0.4, "latency_ms": 50}),
    (6.0, {"error_rate_429": 0.2, "error_rate_500": 0.2, "latency_ms": 300}),
    (9.0, {}),
]
CALLS_PER_ATTEMPT = {  # the most Twilio calls one attempt of a job makes
    # The services (asked afresh: the ledger has never seen the pair), ParticipantConversations
    # in the one service there is, then the create.
    "pair": 3,
    "identity": 2,  # a retried attempt asks whether the earlier create happened, then creates
    "state": 2,  # fetch, then update
}
RATE = 20


class FaultStorm:
    def __init__(self):
        self.stack = ReliabilityStack(
            workers=4,
            BINDERY_MAX_RETRIES=str(MAX_RETRIES),
            BINDERY_CONFLICT_POLICY="reject",
            BINDERY_STALE_AFTER="1h",
            BINDERY_CLEANUP_INTERVAL="1h",
            BINDERY_RECONCILE_INTERVAL="1h",
        )
        self.numbers: set[str] = set()
        self.signatures: list[str] = []
        self.secrets = {"TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN, "BINDERY_API_TOKEN": API_TOKEN}
        self.jobs: dict[str, tuple[str, str, tuple]] = {}  # id -> (kind, conversation, operation)
        self.webhook_answers: Counter = Counter()
        self.replayed: list[str] = []
        self.lock = threading.Lock()

    def number(self) -> str:
        number = new_number()
        self.numbers.add(number)
        return number

    def stop(self) -> None:
        self.stack.stop()

    # -- the storm ---------------------------------------------------------------------------

    def run(self) -> None:
        stack = self.stack
        stack.reset()
        self.twilio = twilio = client_for(stack)
        rng = random.Random(4)
        conversations = [twilio.conversations.v1.conversations.create().sid for _ in range(40)]
        idle = [twilio.conversations.v1.conversations.create().sid for _ in range(10)]
        proxies = [self.number() for _ in range(2)]
        self.expected = {sid: Counter() for sid in conversations}
        self.states = {sid: "inactive" for sid in idle}
        ops = []
        for _ in range(100):  # each pair belongs to one conversation
            sid, body = rng.choice(conversations), {"address": self.number()}
            body["proxy_address"] = rng.choice(proxies)
            ops.append(("pair", sid, body))
        identities = set()
        while len(identities) < 60:
            identities.add((rng.choice(conversations), f"agent-{rng.randrange(10)}"))
        ops += [("identity", sid, {"identity": i}) for sid, i in sorted(identities)]
        ops += [("state", sid, {"state": "inactive"}) for sid in idle]
        for kind, sid, body in ops:
            if kind != "state":
                self.expected[sid][key_of(body)] = 1
        planned = ops + rng.sample(ops, 30)
        rng.shuffle(planned)
        hooks, refused_later = self._webhooks(proxies[0])

        self.calls_before = stack.emulator_stats()["calls"]
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            futures = []
            phases = list(PHASES)
            work = [("api", op) for op in planned] + [("hook", form) for form in hooks]
            rng.shuffle(work)
            for n, item in enumerate(work):
                while phases and time.monotonic() >= started + phases[0][0]:
                    stack.faults(**phases.pop(0)[1])
                while time.monotonic() < started + n / RATE:
                    time.sleep(0.005)
                futures.append(pool.submit(self._send, *item))
            for _, faults in phases:
                stack.faults(**faults)
            for future in futures:
                future.result()
        self.errors_during = stack.emulator_stats()["errors"]

        results = stack.wait(list(self.jobs), timeout=240)
        self.results = {info["id"]: info for info in results}
        # Now the ledger holds each webhook's pair: adding it elsewhere is refused (and logged).
        for form in refused_later:
            self._send("hook", form, expect=409)
        failed = [info["id"] for info in results if info["status"] == "failed"]
        if failed:  # exhausted their retries during the faults: replayed, as an operator would
            self.replayed = failed
            stack.bindery("jobs", "replay", *failed)
            self.results.update({i["id"]: i for i in stack.wait(failed, timeout=240)})
        self.raw = {j: stack.redis.hgetall(f"rq:job:{j}") for j in self.jobs}
        self.stats = stack.emulator_stats()
        time.sleep(2)
        self.stats_later = stack.emulator_stats()
        self.held = {sid: participants_of(twilio, sid) for sid in conversations}
        self.state_now = {
            sid: twilio.conversations.v1.conversations(sid).fetch().state for sid in idle
        }

        # The clock enqueues the periodic cleanup, reconciliation and prune; let them run too.
        stack.start_clock()
        schedule = _wait_schedule(stack)
        stack.wait([entry["last_job_id"] for entry in schedule.values()], timeout=120)
        self.counters = stack.counters()
        self.logs = stack.logs()

    def _webhooks(self, proxy: str) -> tuple[list[dict], list[dict]]:
        """Post-events binding pairs in conversations Bindery only hears of, and pre-events that
        try to add those pairs elsewhere (refused 409, once the post-event's job ran) or fresh
        pairs (allowed); the second list: the held pairs asked for again, after the storm."""
        forms, later = [], []
        common = {"AccountSid": DEFAULT_ACCOUNT_SID, "Source": "SDK"}
        for n in range(20):
            holder, other, customer = (
                "CH" + uuid.uuid4().hex,
                "CH" + uuid.uuid4().hex,
                self.number(),
            )
            binding = {"MessagingBinding.Address": customer, "MessagingBinding.ProxyAddress": proxy}
            forms.append(
                {
                    **common,
                    **binding,
                    "EventType": "onParticipantAdded",
                    "ConversationSid": holder,
                    "ParticipantSid": "MB" + uuid.uuid4().hex,
                    "DateCreated": f"2026-11-26T20:{n:02d}:00Z",
                    "path": "post",
                }
            )
            fresh = {
                "MessagingBinding.Address": self.number(),
                "MessagingBinding.ProxyAddress": proxy,
            }
            for pair in (binding, fresh):
                forms.append(
                    {
                        **common,
                        **pair,
                        "EventType": "onParticipantAdd",
                        "ConversationSid": other,
                        "path": "pre",
                    }
                )
            later.append(forms[-2])
        return forms, later

    def _send(self, what: str, item, expect: int = 0) -> None:
        stack = self.stack
        if what == "hook":
            form = dict(item)
            url = f"{stack.web_url}/twilio/conversations/{form.pop('path')}"
            response, signature = signed_post(url, form, session=requests)
            with self.lock:
                self.signatures.append(signature)
                self.webhook_answers[(form["EventType"], response.status_code)] += 1
            assert response.status_code in ((expect,) if expect else (200, 409)), response.text
            if form["EventType"] == "onParticipantAdded":
                with self.lock:
                    self.jobs[response.json()["job_id"]] = ("event", form["ConversationSid"], ())
            return
        kind, sid, body = item
        job_id = stack.set_state(sid, **body) if kind == "state" else stack.add(sid, **body)
        with self.lock:
            self.jobs[job_id] = (kind, sid, key_of(body) if kind != "state" else ())

    # -- what the tests read -------------------------------------------------------------------

    def calls(self, stats: dict | None = None) -> int:
        """Twilio calls the storm's jobs made (the test's own setup calls excluded)."""
        after = (stats or self.stats)["calls"]
        return sum(after.values()) - sum(self.calls_before.values())

    def bound(self) -> int:
        """Calls allowed if every job used every attempt: first run, retries, and replays."""
        total = 0
        for job_id, (kind, _, _) in self.jobs.items():
            if kind == "event":
                continue
            runs = 1 + (job_id in self.replayed)
            total += CALLS_PER_ATTEMPT[kind] * (1 + MAX_RETRIES) * runs
        return total

    def calls_if_each_attempt_called_fully(self) -> int:
        """Calls allowed for the attempts the jobs really made (each failed one is recorded, and
        the one that succeeded)."""
        total = 0
        for job_id, (kind, _, _) in self.jobs.items():
            if kind != "event":
                total += CALLS_PER_ATTEMPT[kind] * self.results[job_id]["attempt_count"]
        return total

    def retry_intervals(self, job_id: str) -> list[int]:
        return json.loads(self.raw[job_id][b"retry_intervals"])


def key_of(body: dict) -> tuple:
    if body.get("identity"):
        return ("identity", body["identity"])
    return ("pair", body["address"], body["proxy_address"])


def _wait_schedule(stack) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        raw = stack.redis.hgetall("bindery:schedule")
        if len(raw) == 3:  # cleanup, reconcile, prune
            return {k.decode(): json.loads(v) for k, v in raw.items()}
        time.sleep(0.2)
    raise AssertionError("the clock enqueued nothing:\n" + stack.logs().get("clock", "")[-2000:])
