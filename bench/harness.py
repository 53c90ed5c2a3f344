"""Real processes for the benchmarks: a private redis-server, the emulator, gunicorn (Bindery's
`bindery web` or the bare app under the same settings) and `bindery worker` pools.

Every process is started through the command a deployer runs, in its own session (so stopping it
stops its children), with its output in a temporary log file shown when it fails to come up.
Memory and CPU are read from /proc for a process and all its descendants.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from devstack import processes
from devstack.processes import BINDERY, free_port
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from workers.cli import serve

REPO = Path(__file__).resolve().parent.parent
API_TOKEN = "bench-api-token"
WEB_WORKERS = serve.WEB_WORKERS
"""gunicorn worker processes for Bindery and the bare app alike (`bindery web`'s default)."""
WEB_THREADS = serve.WEB_THREADS
"""Threads per gunicorn worker for both (`bindery web`'s default)."""
WORKER_GRACE = 3.0
"""Seconds an idle worker pool is given to stop on SIGTERM before it is killed."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc: process trees, memory, CPU ---------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every process below it, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if _stat(pid) is not None:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def memory_mb(pids: list[int]) -> dict[str, float]:
    """Summed RSS (counts shared pages once per process) and PSS (shares them out), in MB."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1)}


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, ours and others'), from
    /proc/stat: all but idle and iowait."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLOCK_TICKS


class CpuMeter:
    """Cores each part kept busy between `start()` and `stop()`; `bench` is this process (the load
    generator or the baseline client), `others` whatever else ran on the machine meanwhile (other
    users: the noise)."""

    def __init__(self, parts: dict[str, Callable[[], list[int]]]):
        self.parts = parts

    def _read(self) -> dict[str, float]:
        times = os.times()
        found = {name: cpu_seconds(pids()) for name, pids in self.parts.items()}
        found["bench"] = times.user + times.system
        found["machine"] = machine_busy_seconds()
        return found

    def start(self) -> None:
        self._begin, self._at = self._read(), time.monotonic()

    def stop(self) -> dict[str, float]:
        end, wall = self._read(), time.monotonic() - self._at
        cores = {k: round((end[k] - self._begin[k]) / wall, 2) for k in end}
        machine = cores.pop("machine")
        cores["total"] = round(sum(cores.values()), 2)
        cores["others"] = round(max(0.0, machine - cores["total"]), 2)
        return cores


# -- processes ---------------------------------------------------------------------------------


class Process(processes.Process):
    """One command in its own session, from the repository's root, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        super().__init__(name, argv, env, cwd=REPO, log_prefix="bindery-bench-")

    def tree(self) -> list[int]:
        return descendants(self.pid)

    def output(self, tail: int | None = 4000) -> str:
        return super().output(tail)

    def wait_http(self, url: str, timeout: float = 30) -> None:
        super().wait_http(url, timeout)

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)


class PrivateRedis(processes.PrivateRedis):
    """A redis-server of the run's own, without persistence, so no benchmark touches a shared one;
    with a client kept open for the benchmarks' own reads."""

    def __init__(self) -> None:
        super().__init__(prefix="bindery-bench-redis-")
        self.client = redis.Redis.from_url(self.url)

    def version(self) -> str:
        return self.client.info("server")["redis_version"]

    def stop(self) -> None:
        self.client.close()
        super().stop()


class Emulator:
    """`bindery emulator` and its admin endpoints."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            "emulator", [BINDERY, "emulator", "--port", str(self.port), "--quiet"], env
        )
        self.process.wait_http(self.url + "/_emulator/stats")
        self.admin = requests.Session()

    def _post(self, path: str, body: dict | None = None) -> dict:
        response = self.admin.post(f"{self.url}/_emulator/{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self.admin.get(f"{self.url}/_emulator/stats", timeout=30).json()

    def faults(self, **faults) -> dict:
        """Replaces every fault: `faults()` clears them all."""
        return self._post("faults", faults)

    def reset(self) -> None:
        self._post("reset")

    def advance_clock(self, seconds: float) -> None:
        self._post("clock", {"advance_seconds": seconds})

    def client(self):
        """The official client, as Bindery builds it (`workers.twilio_http.make_client`)."""
        from workers.twilio_http import make_client

        return make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=self.url)

    def create_conversations(self, count: int, threads: int = 8) -> list[str]:
        """`count` new conversations through the REST API, from parallel threads (fast setup)."""
        url = f"{self.url}/v1/Conversations"

        def create(indices: range) -> list[str]:
            session = requests.Session()
            session.auth = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
            sids = []
            for _ in indices:
                response = session.post(url, data={}, timeout=30)
                response.raise_for_status()
                sids.append(response.json()["sid"])
            return sids

        chunks = [range(i, count, threads) for i in range(threads)]
        with ThreadPoolExecutor(threads) as pool:
            return [sid for part in pool.map(create, chunks) for sid in part]

    def stop(self) -> None:
        self.admin.close()
        self.process.stop()


def calls_between(before: dict, after: dict) -> dict[str, int]:
    """REST calls by operation made between two `/_emulator/stats` snapshots."""
    names = set(before["calls"]) | set(after["calls"])
    diff = {n: after["calls"].get(n, 0) - before["calls"].get(n, 0) for n in names}
    return {n: v for n, v in sorted(diff.items()) if v}


def errors_between(before: dict, after: dict) -> dict[str, int]:
    names = set(before["errors"]) | set(after["errors"])
    diff = {n: after["errors"].get(n, 0) - before["errors"].get(n, 0) for n in names}
    return {n: v for n, v in sorted(diff.items()) if v}


class Stack:
    """A private Redis plus whichever of the emulator, web, bare app and workers a benchmark needs.

    Everything is wired as `make dev` wires it: Bindery's settings from the environment, with the
    emulator as Twilio and the defaults for everything a benchmark does not name in `settings`.
    """

    def __init__(self, emulator: bool = True, **settings: str):
        self.redis = PrivateRedis()
        self.processes: list[Process] = []
        self.env = {
            **os.environ,
            # `bench.noop` and `bench.bare_app` must be importable by the workers and gunicorn.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "REDIS_URL": self.redis.url,
            "BINDERY_API_TOKEN": API_TOKEN,
            "BINDERY_ENV": "production",
        }
        for name in list(self.env):
            if name.startswith("BINDERY_") and name not in ("BINDERY_API_TOKEN", "BINDERY_ENV"):
                del self.env[name]  # the defaults, unless this run names a setting
        self.emulator = Emulator(self.env) if emulator else None
        if self.emulator:
            self.env["TWILIO_API_BASE_URL"] = self.emulator.url
        self.env.update(settings)
        self.web: Process | None = None
        self.web_url = ""
        self.workers: Process | None = None
        self.worker_count = 0

    def settings(self):
        """The `Settings` the processes read, for in-process work (a cleanup scan, enqueueing)."""
        from workers.settings import Settings

        return Settings.from_env(self.env)

    # -- web ----------------------------------------------------------------------------------

    def start_web(self, workers: int = WEB_WORKERS, threads: int = WEB_THREADS) -> str:
        """`bindery web` (its defaults unless told); returns its URL. Replaces a running one."""
        if self.web:
            self.stop_process(self.web)
        port = free_port()
        argv = [BINDERY, "web", "--port", str(port)]
        argv += ["--workers", str(workers), "--threads", str(threads)]
        self.web = self._start("web", argv)
        self.web_url = f"http://127.0.0.1:{port}"
        self.web.wait_http(self.web_url + "/healthz")
        return self.web_url

    def start_bare(
        self, workers: int = WEB_WORKERS, threads: int = WEB_THREADS
    ) -> tuple[Process, str]:
        """The bare Flask app under exactly the gunicorn command `bindery web` execs."""
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        argv += ["--workers", str(workers), "--threads", str(threads)]
        argv += ["--config", "python:webhooks.gunicorn_config", "bench.bare_app:create_app()"]
        process = self._start("bare", argv)
        url = f"http://127.0.0.1:{port}"
        process.wait_http(url + "/healthz")
        return process, url

    def start_trivial(self) -> tuple[Process, str]:
        """A server answering a fixed 200 and nothing else: the load generator's own ceiling."""
        port = free_port()
        code = f"from bench.load import trivial_server; trivial_server({port})"
        process = self._start("trivial", [sys.executable, "-c", code])
        url = f"http://127.0.0.1:{port}"
        process.wait_http(url + "/")
        return process, url

    # -- workers ------------------------------------------------------------------------------

    def start_workers(self, processes: int, timeout: float = 60) -> None:
        """`bindery worker --processes N`, returning once all N have registered with RQ."""
        from rq import Worker

        self.stop_workers()
        self.workers = self._start("worker", [BINDERY, "worker", "--processes", str(processes)])
        self.worker_count = processes
        deadline = time.monotonic() + timeout
        while True:
            if not self.workers.alive():
                raise RuntimeError(f"worker pool exited:\n{self.workers.output()}")
            tree = set(self.workers.tree())
            ready = [w for w in Worker.all(connection=self.redis.client) if w.pid in tree]
            if len(ready) >= processes:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(ready)}/{processes} workers up:\n{self.workers.output()}")
            time.sleep(0.1)

    def stop_workers(self) -> None:
        """The pool is idle when a benchmark stops it (every job waited for), so after a short
        grace it is killed: an idle `bindery worker` can take ~15 s to act on SIGTERM (its
        workers sit in a blocking dequeue), which would only slow the benchmarks down."""
        if self.workers:
            self.stop_process(self.workers, timeout=WORKER_GRACE)
            self.workers = None

    def stop_process(self, process: Process, timeout: float = 20) -> None:
        process.stop(timeout)
        self.processes.remove(process)

    # -- accounting ---------------------------------------------------------------------------

    def bindery_pids(self) -> list[int]:
        """Web and worker processes and all their children: what Bindery itself runs."""
        pids = []
        for process in (self.web, self.workers):
            if process:
                pids += process.tree()
        return pids

    def cpu_parts(self) -> dict[str, Callable[[], list[int]]]:
        """What `CpuMeter` reads for this stack: web, workers, emulator and Redis."""
        parts = {
            "web": lambda: self.web.tree() if self.web else [],
            "workers": lambda: self.workers.tree() if self.workers else [],
            "redis": lambda: [self.redis.pid],
        }
        if self.emulator:
            parts["emulator"] = self.emulator.process.tree
        return parts

    def _start(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        self.stop_workers()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.emulator:
            self.emulator.stop()
        self.redis.stop()
