"""Real processes for integration tests: the emulator, gunicorn, and RQ worker pools.

Each is started through the `bindery` command a deployer would run, with its output in a log file
that is printed when a test fails to bring it up (the process harness is `devstack/processes.py`,
shared with `bindery dev` and the benchmarks). Without `redis-server`, a stack falls back to the
shared server's database 9.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import redis
import requests

from devstack.processes import BINDERY, PrivateRedis, Process, free_port
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

__all__ = ["API_TOKEN", "BINDERY", "PrivateRedis", "Process", "Stack", "free_port"]

API_TOKEN = "integration-api-token"


def shared_redis_url() -> str:
    """Database 9 of the Redis `make test` made sure of (REDIS_URL's server when set)."""
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    return base.rsplit("/", 1)[0] + "/9" if base.count("/") >= 3 else base + "/9"


class Stack:
    """Emulator + web + workers, wired together as `make dev` wires them."""

    def __init__(self, workers: int = 2, web_workers: int = 2, **settings: str):
        self.private_redis = PrivateRedis() if shutil.which("redis-server") else None
        self.redis_url = self.private_redis.url if self.private_redis else shared_redis_url()
        self.redis = redis.Redis.from_url(self.redis_url)
        self.redis.flushdb()
        self.emulator_port = free_port()
        self.web_port = free_port()
        self.emulator_url = f"http://127.0.0.1:{self.emulator_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": self.emulator_url,
            "REDIS_URL": self.redis_url,
            "BINDERY_API_TOKEN": API_TOKEN,
            "BINDERY_ENV": "production",
            # Each stack counts its own metrics (the default directory is shared by the host).
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bindery-metrics-"),
            **settings,
        }
        self.processes: list[Process] = []
        self.emulator = self._start(
            "emulator", [BINDERY, "emulator", "--port", str(self.emulator_port)]
        )
        self.emulator.wait_http(self.emulator_url + "/_emulator/stats")
        self.web = self._start(
            "web",
            [BINDERY, "web", "--port", str(self.web_port), "--workers", str(web_workers)],
        )
        self.web.wait_http(self.web_url + "/healthz")
        self.workers = self._start("worker", [BINDERY, "worker", "--processes", str(workers)])
        self.api = requests.Session()
        self.api.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
        self.api.headers["Authorization"] = f"Bearer {API_TOKEN}"

    def _start(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.redis.close()
        if self.private_redis:
            self.private_redis.stop()
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

    # -- the emulator's admin side ------------------------------------------------------------

    def emulator_post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(
            f"{self.emulator_url}/_emulator/{path}", json=body or {}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def emulator_stats(self) -> dict:
        return requests.get(f"{self.emulator_url}/_emulator/stats", timeout=10).json()

    def reset(self) -> None:
        self.emulator_post("reset")

    # -- Bindery's API ------------------------------------------------------------------------

    def add(self, conversation_sid: str, **body) -> str:
        response = self.api.post(
            f"{self.web_url}/api/v1/conversations/{conversation_sid}/participants",
            json=body,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def set_state(self, conversation_sid: str, **body) -> str:
        response = self.api.post(
            f"{self.web_url}/api/v1/conversations/{conversation_sid}/state", json=body, timeout=10
        )
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def job(self, job_id: str) -> dict:
        response = self.api.get(f"{self.web_url}/api/v1/jobs/{job_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_ids: list[str], timeout: float = 60) -> list[dict]:
        """Each job's final description, once every one has finished or failed."""
        pending = list(dict.fromkeys(job_ids))
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while pending:
            for job_id in list(pending):
                info = self.job(job_id)
                if info["status"] in ("finished", "failed", "canceled", "stopped"):
                    done[job_id] = info
                    pending.remove(job_id)
            if pending:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{len(pending)} jobs unfinished, e.g. {self.job(pending[0])}\n"
                        f"worker log:\n{self.workers.output()[-3000:]}"
                    )
                time.sleep(0.2)
        return [done[j] for j in job_ids]

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the queue is empty and no job is running or scheduled."""
        from rq import Queue

        queue = Queue("bindery", connection=self.redis)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = (
                queue.count + queue.started_job_registry.count + queue.scheduled_job_registry.count
            )
            if busy == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"queue still busy after {timeout}s")
