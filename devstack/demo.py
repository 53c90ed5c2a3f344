"""`bindery demo`: a contact centre's morning against a running stack, with live progress.

50 customers text in (the emulator autocreates their conversations and sends Bindery the webhooks
Twilio would), agents join as chat participants, bursts of duplicate and concurrent adds arrive, a
customer whose old conversation went idle starts a new one (close-stale), and the cleanup closes what
went stale. It ends with a table: webhooks, jobs by outcome, Twilio calls by answer, and the number
that matters, duplicate binding attempts (0).

Then a masked rider/driver round (`Rides`): 200 trips over a pool of 10 numbers, each a session
whose proxy numbers Bindery chooses, opened in bursts of concurrent creates; riders who come back
get the number they had (sticky reuse); one driver given more trips at once than the pool has
numbers meets the exhausted pool's error. It ends with "duplicate binding attempts: 0", read from
the emulator's own counts.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import click
import requests

from workers import cleanup
from workers.runtime import Runtime
from workers.settings import Settings
from workers.twilio_http import make_client

CUSTOMERS = 50
TRIPS = 200
BURSTS = 5
POOL_SIZE = 10
RIDERS = 60
DRIVERS = 20
AGENTS = [f"agent-{i}" for i in range(1, 9)]
DUPLICATE_CODES = ("50416", "50437", "50433")
FINISHED = ("finished", "failed", "canceled", "stopped")


@dataclass
class Target:
    web_url: str
    emulator_url: str
    api_token: str
    redis_url: str
    account_sid: str
    auth_token: str


class Demo:
    def __init__(self, target: Target, stale_after: float, seed: int = 1):
        self.t = target
        self.stale_after = stale_after
        self.rng = random.Random(seed)
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {target.api_token}"
        self.api.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
        self.twilio = make_client(
            target.account_sid, target.auth_token, base_url=target.emulator_url
        )
        self.jobs: list[str] = []

    # -- plumbing ------------------------------------------------------------------------------

    def emulator(self, path: str, body: dict | None = None, method: str = "post") -> dict:
        response = requests.request(
            method, f"{self.t.emulator_url}/_emulator/{path}", json=body, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def add(self, conversation: str, **body) -> str:
        response = self.api.post(
            f"{self.t.web_url}/api/v1/conversations/{conversation}/participants",
            json=body,
            timeout=10,
        )
        if response.status_code != 202:
            raise click.ClickException(f"Bindery answered {response.status_code}: {response.text}")
        job_id = response.json()["job_id"]
        self.jobs.append(job_id)
        return job_id

    def job(self, job_id: str) -> dict:
        return self.api.get(f"{self.t.web_url}/api/v1/jobs/{job_id}", timeout=10).json()

    def wait(self, job_ids: list[str], label: str, timeout: float = 120) -> list[dict]:
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        with click.progressbar(length=len(job_ids), label=f"  {label}") as bar:
            while len(done) < len(job_ids):
                for job_id in job_ids:
                    if job_id not in done:
                        info = self.job(job_id)
                        if info.get("status") in FINISHED:
                            done[job_id] = info
                            bar.update(1)
                if len(done) < len(job_ids):
                    if time.monotonic() > deadline:
                        raise click.ClickException(
                            f"{label}: jobs still unfinished after "
                            f"{timeout:g}s; is `bindery worker` running?"
                        )
                    time.sleep(0.2)
        return [done[j] for j in job_ids]

    @staticmethod
    def step(text: str) -> None:
        click.secho(f"\n{text}", bold=True)

    # -- the scenario --------------------------------------------------------------------------

    def run(self) -> dict:
        before = self.emulator("stats", method="get")
        proxy = "+1555" + f"{self.rng.randrange(10**6, 10**7):07d}"
        customers = [f"+1555{self.rng.randrange(10**6, 10**7):07d}" for _ in range(CUSTOMERS)]

        self.step(f"1. {CUSTOMERS} customers text in to {proxy}")
        with ThreadPoolExecutor(10) as pool:
            answers = list(
                pool.map(
                    lambda c: self.emulator("inbound", {"from": c, "to": proxy, "body": "Hello?"}),
                    customers,
                )
            )
        conversations = [a["conversation_sid"] for a in answers]
        click.echo(
            f"  {sum(a['created'] for a in answers)} conversations autocreated by Twilio; "
            "Bindery learns them from the webhooks"
        )

        self.step("2. Agents join as chat participants")
        with ThreadPoolExecutor(10) as pool:
            agent_jobs = list(
                pool.map(lambda sid: self.add(sid, identity=self.rng.choice(AGENTS)), conversations)
            )
        self.wait(agent_jobs, "agents added")

        self.step("3. Bursts: double clicks, retries and racing webhooks")
        burst = []
        for sid, customer in list(zip(conversations, customers, strict=True))[:20]:
            burst += [(sid, {"identity": "supervisor"})] * 5
            burst += [(sid, {"address": customer, "proxy_address": proxy})] * 3
        self.rng.shuffle(burst)
        with ThreadPoolExecutor(16) as pool:
            burst_jobs = list(pool.map(lambda item: self.add(item[0], **item[1]), burst))
        results = self.wait(burst_jobs, f"{len(burst)} concurrent adds")
        outcomes = Counter((r.get("outcome") or {}).get("outcome", r["status"]) for r in results)
        click.echo("  " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())))

        self.step("4. Hours pass; 10 customers keep writing, the rest go quiet")
        self.emulator("clock", {"advance_seconds": self.stale_after + 3600})
        for customer in customers[:10]:
            self.emulator("inbound", {"from": customer, "to": proxy, "body": "Still there?"})
        returning = customers[-1]
        click.echo("  a quiet customer comes back: the app opens a new conversation for them")
        fresh = self.twilio.conversations.v1.conversations.create(
            friendly_name="returning customer"
        ).sid
        [moved] = self.wait(
            [self.add(fresh, address=returning, proxy_address=proxy, policy="close-stale")],
            "close-stale add",
        )
        outcome = moved.get("outcome") or {}
        click.echo(
            f"  {outcome.get('outcome')}: old conversation {outcome.get('holder')} "
            f"closed, pair bound to {fresh}"
        )

        self.step("5. The cleanup closes what went stale")
        time.sleep(1)  # let the inbound messages' webhooks reach the ledger
        settings = Settings.from_env(
            {
                "TWILIO_ACCOUNT_SID": self.t.account_sid,
                "TWILIO_AUTH_TOKEN": self.t.auth_token,
                "TWILIO_API_BASE_URL": self.t.emulator_url,
                "REDIS_URL": self.t.redis_url,
            },
            stale_after=self.stale_after,
        )
        report = cleanup.run(Runtime.build(settings))
        closes = [s.job_id for s in report]
        self.jobs += closes
        self.wait(closes, f"{len(closes)} stale conversations closing")
        open_now = sum(
            1
            for sid in conversations
            if self.twilio.conversations.v1.conversations(sid).fetch().state != "closed"
        )
        click.echo(
            f"  {open_now} of the customers' first conversations still open (those who "
            "kept writing)"
        )
        return self.summary(before)

    def summary(self, before: dict) -> dict:
        after = self.emulator("stats", method="get")
        infos = [self.job(j) for j in self.jobs]
        outcomes = Counter((i.get("outcome") or {}).get("outcome", i.get("status")) for i in infos)
        calls = Counter(after["calls"]) - Counter(before["calls"])
        errors = Counter(after["errors"]) - Counter(before["errors"])
        duplicates = sum(errors.get(code, 0) for code in DUPLICATE_CODES)
        sent = after["webhooks"]["sent"] - before["webhooks"]["sent"]
        rows = [("webhooks sent by Twilio (emulator) and answered 2xx", sent)]
        rows += [(f"jobs: {name}", count) for name, count in sorted(outcomes.items())]
        rows += [
            (f"Twilio calls (Bindery's and the demo app's): {name}", count)
            for name, count in sorted(calls.items())
        ]
        rows += [(f"Twilio errors: {code}", count) for code, count in sorted(errors.items())]
        rows.append(("duplicate binding attempts (50416, 50437, 50433)", duplicates))
        width = max(len(name) for name, _ in rows)
        click.secho("\nSummary", bold=True)
        for name, count in rows:
            click.echo(f"  {name.ljust(width)}  {count:>6}")
        return {
            "webhooks_sent": sent,
            "jobs": dict(outcomes),
            "calls": dict(calls),
            "errors": dict(errors),
            "duplicate_binding_attempts": duplicates,
        }


class Rides:
    """The masked rider/driver round: sessions over one pool of proxy numbers."""

    def __init__(self, demo: Demo, pool: str = "demo-rides"):
        self.demo = demo
        self.t = demo.t
        self.rng = demo.rng
        self.pool = pool
        self.api = demo.api
        self.base = f"{self.t.web_url}/api/v1"
        self.run_id = uuid.uuid4().hex[:12]
        self.keys = itertools.count(1)  # thread-safe: one key per create

    def _ask(self, method: str, path: str, **kwargs) -> requests.Response:
        """One API request; sent again when a kept-alive connection was closed under it (every
        request here is safe to repeat: creates carry an idempotency key)."""
        for attempt in range(3):
            try:
                return self.api.request(method, f"{self.base}/{path}", timeout=10, **kwargs)
            except requests.ConnectionError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def open(self, rider: str, driver: str) -> str:
        key = f"demo-{self.run_id}-{next(self.keys)}"
        response = self._ask(
            "post",
            "sessions",
            json={
                "pool": self.pool,
                "participants": [{"address": rider}, {"address": driver}],
                "idempotency_key": key,
            },
        )
        if response.status_code != 202:
            raise click.ClickException(f"Bindery answered {response.status_code}: {response.text}")
        return response.json()["session_id"]

    def settle(self, ids: list[str], label: str, want=("open", "failed"), timeout=120) -> dict:
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        with click.progressbar(length=len(ids), label=f"  {label}") as bar:
            while len(done) < len(ids):
                for session_id in ids:
                    if session_id not in done:
                        info = self._ask("get", f"sessions/{session_id}").json()
                        if info.get("status") in want:
                            done[session_id] = info
                            bar.update(1)
                if len(done) < len(ids):
                    if time.monotonic() > deadline:
                        raise click.ClickException(
                            f"{label}: sessions still pending after {timeout:g}s; "
                            "is `bindery worker` running?"
                        )
                    time.sleep(0.2)
        return done

    def close(self, ids: list[str]) -> None:
        for session_id in ids:
            response = self._ask("delete", f"sessions/{session_id}")
            if response.status_code >= 400 and response.status_code != 409:
                raise click.ClickException(
                    f"closing {session_id}: Bindery answered {response.status_code}: "
                    f"{response.text}"
                )
        self.settle(ids, f"{len(ids)} trips ending", want=("closed", "failed"))

    def run(self) -> dict:
        before = self.demo.emulator("stats", method="get")
        numbers = [f"+1444{self.rng.randrange(10**6, 10**7):07d}" for _ in range(POOL_SIZE)]
        riders = [f"+1555{self.rng.randrange(10**6, 10**7):07d}" for _ in range(RIDERS)]
        drivers = [f"+1666{self.rng.randrange(10**6, 10**7):07d}" for _ in range(DRIVERS)]
        self.demo.step(f"6. Masked trips: pool {self.pool!r} of {POOL_SIZE} numbers")
        answer = self._ask(
            "put", f"pools/{self.pool}", json={"numbers": [{"number": n} for n in numbers]}
        )
        if answer.status_code >= 300:
            raise click.ClickException(
                f"pool: Bindery answered {answer.status_code}: {answer.text}"
            )
        click.echo(f"  {TRIPS} trips of {RIDERS} riders and {DRIVERS} drivers, in {BURSTS} bursts")
        last_number: dict[str, str] = {}
        opened = failed = returning = sticky = 0
        pairs_twice = 0
        per_burst = TRIPS // BURSTS
        for burst in range(BURSTS):
            trips = [
                (rider, self.rng.choice(drivers)) for rider in self.rng.sample(riders, per_burst)
            ]
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(lambda trip: self.open(*trip), trips))
            answers = self.settle(ids, f"burst {burst + 1}: {len(ids)} sessions at once")
            held = Counter()
            for (rider, _), session_id in zip(trips, ids, strict=True):
                info = answers[session_id]
                if info["status"] != "open":
                    failed += 1
                    continue
                opened += 1
                given = {p.get("address"): p.get("proxy_address") for p in info["participants"]}
                held.update((a, n) for a, n in given.items() if a and n)
                if rider in last_number:
                    returning += 1
                    sticky += given.get(rider) == last_number[rider]
                last_number[rider] = given.get(rider, "")
            pairs_twice += sum(n - 1 for n in held.values() if n > 1)
            self.close(ids)
        click.echo(
            f"  {opened} trips opened, {failed} failed; {returning} returning riders, "
            f"{sticky} of them on the number they had last time (prefer-sticky)"
        )

        self.demo.step(f"7. One driver, {POOL_SIZE} trips at once and one more: the pool runs out")
        driver = drivers[0]
        busy = self.rng.sample(riders, POOL_SIZE)
        with ThreadPoolExecutor(POOL_SIZE) as pool:
            ids = list(pool.map(lambda rider: self.open(rider, driver), busy))
        answers = self.settle(ids, f"{POOL_SIZE} sessions for one driver")
        extra = self.open(self.rng.choice([r for r in riders if r not in busy]), driver)
        [refused] = self.settle([extra], "one more").values()
        exhausted = refused["status"] == "failed"
        given = {
            p.get("proxy_address")
            for a in answers.values()
            if a["status"] == "open"
            for p in a["participants"]
            if p.get("address") == driver
        }
        click.echo(
            f"  {sum(a['status'] == 'open' for a in answers.values())} open, on {len(given)} "
            f"different numbers for the driver; the next: {refused['status']}: "
            f"{refused.get('error')}"
        )
        self.close([i for i in ids if answers[i]["status"] == "open"])
        return self.summary(before, opened, failed, sticky, returning, pairs_twice, exhausted)

    def summary(self, before, opened, failed, sticky, returning, pairs_twice, exhausted) -> dict:
        after = self.demo.emulator("stats", method="get")
        errors = Counter(after["errors"]) - Counter(before["errors"])
        duplicates = sum(errors.get(code, 0) for code in DUPLICATE_CODES)
        rows = [
            ("trips opened", opened),
            ("trips failed", failed),
            ("returning riders on the same number", f"{sticky} of {returning}"),
            ("pairs given twice at once", pairs_twice),
            ("pool exhausted, answered with its error", "yes" if exhausted else "no"),
        ]
        width = max(len(name) for name, _ in rows)
        click.secho("\nMasked trips", bold=True)
        for name, value in rows:
            click.echo(f"  {name.ljust(width)}  {value!s:>8}")
        click.echo(f"duplicate binding attempts: {duplicates}")
        return {
            "trips_opened": opened,
            "trips_failed": failed,
            "sticky": sticky,
            "returning": returning,
            "pairs_twice": pairs_twice,
            "exhausted": exhausted,
            "duplicate_binding_attempts": duplicates,
        }
