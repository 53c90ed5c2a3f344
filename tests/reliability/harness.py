"""What the reliability tests add to `tests/integration/stack.py`: a Redis that can be configured and
restarted (`devstack.processes.PrivateRedis`), the worker pool's processes found and killed through /proc, signed webhooks, and raw
looks into Redis that have no side effects (RQ's registry `count()` runs a cleanup, so the tests
never use it while they measure what the workers do by themselves)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterable

import redis
import requests
from twilio.request_validator import RequestValidator

from devstack.processes import BINDERY, PrivateRedis, Process, wait_for
from emulator.defaults import DEFAULT_AUTH_TOKEN
from tests.integration.stack import Stack

__all__ = ["ReliabilityStack", "Trickle", "kill_worker", "signed_post", "wait_for"]


class ReliabilityStack(Stack):
    """`Stack`, optionally on a private Redis started with `redis_args` (`--appendonly yes`,
    `--maxmemory`...) that can be stopped and started again on the same port and directory, with
    access to the worker pool's processes, the processes' logs and the `bindery` command."""

    def __init__(self, workers: int = 2, web_workers: int = 2, redis_args=(), **settings: str):
        managed = PrivateRedis(*redis_args) if redis_args else None
        if managed:
            # The processes read REDIS_URL from the environment Stack builds, settings last.
            settings = {"REDIS_URL": managed.url, **settings}
        try:
            super().__init__(workers=workers, web_workers=web_workers, **settings)
        except BaseException:
            if managed:
                managed.stop()
            raise
        if managed:
            if self.private_redis:
                self.private_redis.stop()
            self.redis.close()
            self.private_redis, self.redis_url = managed, managed.url
            self.redis = redis.Redis.from_url(managed.url)

    # -- processes -----------------------------------------------------------------------------

    @property
    def pool_pid(self) -> int:
        return self.workers.popen.pid

    def worker_pids(self) -> list[int]:
        """The pool's live worker processes (its direct children; each RQ scheduler is a child
        of one of them, a grandchild of the pool)."""
        return children(self.pool_pid)

    def start_clock(self, tick: float = 0.5) -> Process:
        clock = self._start("clock", [BINDERY, "clock", "--tick", str(tick)])
        return clock

    def logs(self) -> dict[str, str]:
        """Everything the web, worker and clock processes wrote (stdout and stderr)."""
        return {p.name: p.output() for p in self.processes if p.name != "emulator"}

    # -- the emulator and the command line -----------------------------------------------------

    def faults(self, **faults) -> dict:
        return self.emulator_post("faults", faults)

    def bindery(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [BINDERY, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stderr + result.stdout
        return result.stdout

    def failed_jobs(self) -> dict[str, dict]:
        """`bindery jobs failed --json`, by job id."""
        return {item["id"]: item for item in json.loads(self.bindery("jobs", "failed", "--json"))}

    def counters(self) -> dict[str, int]:
        """The ledger's counters from `bindery status --json` (which also runs RQ's registry
        cleanup: call it only once the measuring is over)."""
        return json.loads(self.bindery("status", "--json"))["counters"]


# -- /proc ------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of `pid`, by scanning /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def gone(pid: int) -> bool:
    stat = _stat(pid)
    return stat is None or stat[0] == "Z"


# -- RQ's bookkeeping, read raw ----------------------------------------------------------------


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def worker_name(connection: redis.Redis, pid: int) -> str:
    """The RQ worker name registered by process `pid`, or "" if it has not registered yet."""
    for key in connection.scan_iter(match="rq:worker:*", count=1000):
        name = _text(key)[len("rq:worker:") :]
        if ":" in name:
            continue
        if _text(connection.hget(key, "pid")) == str(pid):
            return name
    return ""


def executions(connection: redis.Redis, name: str) -> list[str]:
    """Job ids the worker `name` has started and not finished (its execution index)."""
    members = connection.smembers(f"rq:worker:{name}:executions")
    return sorted({_text(m).split(":", 1)[0] for m in members})


def job_field(connection: redis.Redis, job_id: str, field: str) -> str:
    return _text(connection.hget(f"rq:job:{job_id}", field))


def kill_worker(connection: redis.Redis, pid: int) -> list[str]:
    """SIGKILL worker process `pid`; the job ids it was running (now abandoned)."""
    name = worker_name(connection, pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gone(pid), 10, f"worker {pid} to die", step=0.02)
    # The dead process can no longer change its execution index: what is left was running.
    return (
        [j for j in executions(connection, name) if job_field(connection, j, "status")]
        if name
        else []
    )


# -- requests ------------------------------------------------------------------------------------


def signed_post(
    url: str,
    form: dict,
    session: requests.Session | None = None,
    token: str = DEFAULT_AUTH_TOKEN,
    timeout: float = 30,
) -> tuple[requests.Response, str]:
    """POST `form` signed as Twilio signs it; the answer and the signature sent."""
    signature = RequestValidator(token).compute_signature(url, form)
    response = (session or requests).post(
        url, data=form, headers={"X-Twilio-Signature": signature}, timeout=timeout
    )
    return response, signature


def participants_of(twilio, sid: str) -> Counter:
    """What Twilio holds in a conversation: ("identity", id) and ("pair", address, proxy)."""
    found: Counter = Counter()
    for p in twilio.conversations.v1.conversations(sid).participants.list():
        if p.identity:
            found[("identity", p.identity)] += 1
        else:
            binding = p.messaging_binding
            found[("pair", binding["address"], binding["proxy_address"])] += 1
    return found


class Trickle:
    """Calls `send()` every `interval` seconds in a thread until stopped: production traffic that
    keeps flowing while a test waits (RQ workers run their maintenance between jobs)."""

    def __init__(self, send: Callable[[], None], interval: float):
        self.send, self.interval = send, interval
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.send()
            except Exception as error:  # noqa: BLE001 - reported by stop()
                self.errors.append(error)

    def __enter__(self) -> Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(30)
        assert not self.errors, self.errors[:3]


def leaks(logs: dict[str, str], secrets: dict[str, Iterable[str]]) -> list[str]:
    """Every log line holding one of the secrets: "<process>: <what>: <line>"."""
    found = []
    for process, text in logs.items():
        for line in text.splitlines():
            for what, values in secrets.items():
                if any(value and value in line for value in values):
                    found.append(f"{process}: {what}: {line[:300]}")
    return found
