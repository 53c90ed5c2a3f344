"""Real processes on this machine, shared by `bindery dev`, the tests and the benchmarks: free ports,
a Redis probe, a private `redis-server`, a process with its log file, and waiting for HTTP.

Every process is started in its own session, so stopping it stops its children too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import requests

BINDERY = str(Path(sys.executable).parent / "bindery")
"""The `bindery` command of the interpreter running this (the project's virtualenv)."""


def free_port() -> int:
    """A TCP port nothing listens on at this moment (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when `port` cannot be bound on `host` (a server holds it)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis at `url` answers PING within `timeout` seconds."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.1):
    """The predicate's first truthy answer, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


def answers_http(url: str) -> bool:
    """True when anything answers at `url` (any status)."""
    try:
        requests.get(url, timeout=1)
    except requests.RequestException:
        return False
    return True


class Process:
    """One command in its own session, its output (stdout and stderr) in a temporary log file, or
    in this process's own output when `log` is False (the dev stack's children); with
    `discard_stdout`, its stdout is thrown away (a banner the dev stack's own replaces) and only
    its stderr (its log records) is kept; with `split_stderr`, stderr goes to a log file of its
    own (`errors()`), apart from stdout (`output()`)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: str | os.PathLike | None = None,
        log: bool = True,
        log_prefix: str = "bindery-",
        discard_stdout: bool = False,
        split_stderr: bool = False,
    ):
        self.name = name

        def log_file(suffix: str):
            return tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
                prefix=f"{log_prefix}{name}-", suffix=suffix, delete=False
            )

        self.log = log_file(".log") if log else None
        self.error_log = log_file(".stderr.log") if log and split_stderr else None
        stderr = self.error_log or (subprocess.STDOUT if log else None)
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL if discard_stdout else self.log,
            stderr=self.log if discard_stdout else stderr,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self, tail: int | None = None) -> str:
        """What the process wrote so far (its last `tail` characters); "" without a log file."""
        if self.log is None:
            return ""
        text = Path(self.log.name).read_text(errors="replace")
        return text[-tail:] if tail else text

    def errors(self) -> str:
        """What the process wrote on stderr so far, with `split_stderr`; "" otherwise."""
        if self.error_log is None:
            return ""
        return Path(self.error_log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_http(self, url: str, timeout: float = 20) -> None:
        """Until anything answers at `url`; raises, with the log's tail, if the process exits or
        `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.output(4000)}")
            if answers_http(url):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer at {url}:\n{self.output(4000)}")

    def terminate(self) -> None:
        """SIGTERM to the process and its children, without waiting."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL to the whole session after `timeout` seconds; the log is removed."""
        self.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        for log in (self.log, self.error_log):
            if log is not None:
                log.close()
                Path(log.name).unlink(missing_ok=True)


class PrivateRedis:
    """A `redis-server` of the caller's own on a free port, without persistence unless `extra`
    arguments say otherwise (`--appendonly yes`, `--maxmemory ...`), its data in a temporary
    directory, so that two runs on one machine never share a queue."""

    def __init__(self, *extra: str, prefix: str = "bindery-redis-"):
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", self.dir, *extra]
        self.popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout: float = 20) -> None:
        wait_for(lambda: redis_answers(self.url), timeout, f"redis-server on {self.port}", 0.05)

    def down(self) -> None:
        """SIGTERM, as an orchestrator stops Redis: it flushes its AOF (if any) and exits."""
        self.popen.terminate()
        self.popen.wait(15)

    def up(self) -> None:
        """Start again on the same port and directory (an AOF survives)."""
        self.popen = subprocess.Popen(
            self.popen.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_ready()

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.down()
        shutil.rmtree(self.dir, ignore_errors=True)
