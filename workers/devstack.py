"""`bindery dev`: the whole stack on one machine, against the emulator.

It starts the emulator, the web app (gunicorn), worker processes and the clock as child processes
of this one, each through the `bindery` command a deployer would run, points the emulator's webhooks
at the web app, writes the URLs and the API token to `.bindery-dev.json` (which `bindery demo` reads),
and stops everything on Ctrl-C. Redis: REDIS_URL if set; else a Redis answering on 127.0.0.1:6379;
else an embedded one (fakeredis's TCP server, in this process).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import redis
import requests

from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from workers.settings import DEFAULT_REDIS_URL

STATE_FILE = ".bindery-dev.json"
WEBHOOK_FILTERS = [
    "onConversationAdd",
    "onParticipantAdd",
    "onConversationAdded",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
    "onConversationRemoved",
    "onMessageAdded",
]
BINDERY = str(Path(sys.executable).parent / "bindery")


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def choose_redis(embedded_only: bool = False) -> tuple[str, str, object | None]:
    """(url, how it was chosen, the embedded server to stop later or None)."""
    url = os.environ.get("REDIS_URL", "")
    if url and not embedded_only:
        if not _answers(url):
            raise click.ClickException(f"REDIS_URL is set but nothing answers at {url}")
        return url, "REDIS_URL", None
    if not embedded_only and _answers(DEFAULT_REDIS_URL):
        return DEFAULT_REDIS_URL, "the Redis answering on 127.0.0.1:6379", None
    try:
        from fakeredis import TcpFakeServer
        from fakeredis._clients._tcp_server import TCPFakeRequestHandler
    except ImportError:
        raise click.ClickException(
            "no Redis answers on 127.0.0.1:6379 and fakeredis (the embedded fallback, in the dev "
            "extra) is not installed: run `make dev`, set REDIS_URL, or start redis-server"
        ) from None

    class Handler(TCPFakeRequestHandler):
        """fakeredis 2.41's TCP server answers CLIENT INFO with `addr=('127.0.0.1', 5000)`, which
        redis-py cannot parse and RQ's worker start-up asks for; answer `addr=127.0.0.1:5000` as
        Redis does."""

        def setup(self) -> None:
            super().setup()
            info = self.current_client.get_socket()._client_info
            for key in ("addr", "laddr"):
                if isinstance(info.get(key), tuple):
                    info[key] = "{}:{}".format(*info[key][:2])

    port = _free_port()
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    server.RequestHandlerClass = Handler
    threading.Thread(target=server.serve_forever, daemon=True, name="embedded-redis").start()
    return f"redis://127.0.0.1:{port}/0", "an embedded Redis (fakeredis) on 127.0.0.1", server


@dataclass
class DevStack:
    web_port: int = 8000
    emulator_port: int = 8090
    workers: int = 2
    embedded_redis: bool = False
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self) -> int:
        redis_url, how, embedded = choose_redis(self.embedded_redis)
        click.echo(f"redis:    {redis_url} ({how})")
        api_token = os.environ.get("BINDERY_API_TOKEN") or "dev-" + secrets.token_hex(8)
        ops_tokens = os.environ.get("BINDERY_OPS_TOKENS") or "ops-" + secrets.token_hex(12)
        env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
            "TWILIO_API_BASE_URL": f"http://127.0.0.1:{self.emulator_port}",
            "REDIS_URL": redis_url,
            "BINDERY_API_TOKEN": api_token,
            "BINDERY_OPS_TOKENS": ops_tokens,
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bindery-dev-metrics-"),
        }
        web_url = f"http://127.0.0.1:{self.web_port}"
        emulator_url = env["TWILIO_API_BASE_URL"]
        try:
            self._start("emulator", ["emulator", "--port", str(self.emulator_port)], env)
            self._wait(emulator_url + "/_emulator/stats", "emulator")
            self._start("web", ["web", "--port", str(self.web_port), "--workers", "2"], env)
            self._wait(web_url + "/healthz", "web")
            self._start("worker", ["worker", "--processes", str(self.workers)], env)
            self._start("clock", ["clock"], env)
            self._point_webhooks(emulator_url, web_url)
            state = {
                "web_url": web_url,
                "emulator_url": emulator_url,
                "api_token": api_token,
                "redis_url": redis_url,
                "account_sid": DEFAULT_ACCOUNT_SID,
                "auth_token": DEFAULT_AUTH_TOKEN,
            }
            Path(STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
            click.echo(f"emulator: {emulator_url}  (Twilio Conversations API, /_emulator/stats)")
            click.echo(f"web:      {web_url}  (webhooks at /twilio/conversations/pre and /post)")
            click.echo(f"api:      {web_url}/api/v1  (Authorization: Bearer {api_token})")
            click.echo(f"metrics:  {web_url}/metrics   readiness: {web_url}/readyz")
            first_token = ops_tokens.split(",")[0].strip()
            click.echo(f"console:  {web_url}/ops/  (sign in with the operator token {first_token})")
            click.echo(f"workers:  {self.workers} processes, and the clock")
            click.echo(f"Wrote {STATE_FILE}. In another shell: .venv/bin/bindery demo")
            click.echo("Ctrl-C stops everything.")
            return self._supervise()
        finally:
            Path(STATE_FILE).unlink(missing_ok=True)  # first: the stack is going away
            self._stop_all()
            shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
            if embedded is not None:
                embedded.shutdown()
                embedded.server_close()

    def _start(self, name: str, args: list[str], env: dict) -> None:
        self.children[name] = subprocess.Popen([BINDERY, *args], env=env, start_new_session=True)

    def _wait(self, url: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.children[name].poll() is not None:
                raise click.ClickException(f"{name} exited while starting")
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise click.ClickException(f"{name} did not answer at {url} within {timeout:g}s")

    @staticmethod
    def _point_webhooks(emulator_url: str, web_url: str) -> None:
        from workers.twilio_http import make_client

        client = make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=emulator_url)
        client.conversations.v1.configuration.webhooks().update(
            pre_webhook_url=f"{web_url}/twilio/conversations/pre",
            post_webhook_url=f"{web_url}/twilio/conversations/post",
            filters=WEBHOOK_FILTERS,
            method="POST",
        )

    def _supervise(self) -> int:
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        while not stopping.is_set():
            for name, child in self.children.items():
                if child.poll() is not None:
                    click.echo(
                        f"{name} exited with {child.returncode}; stopping the stack", err=True
                    )
                    return 1
            stopping.wait(0.5)
        click.echo("stopping...")
        return 0

    def _stop_all(self, grace: float = 10) -> None:
        """SIGTERM to every child at once; whatever still runs after `grace` seconds is killed."""
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)
