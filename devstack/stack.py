"""`bindery dev`: the whole stack on one machine, against the emulator.

It starts the emulator, the web app (gunicorn), worker processes and the clock as child processes
of this one, each through the `bindery` command a deployer would run, points the emulator's webhooks
at the web app, writes the URLs and the API token to `.bindery-dev.json` (which `bindery demo` and
the operator commands read), and stops everything on Ctrl-C.

Before it prints or writes anything it checks that no other `bindery dev` runs in this folder and
that its ports are free; it removes the state file only if the file is still its own.

Redis: REDIS_URL if set; else database `DEV_DATABASE` of the Redis answering on 127.0.0.1:6379
(the stack's data apart from whatever else lives there); else an embedded one (fakeredis's TCP
server, in this process). `--reset` first removes Bindery's and RQ's keys from that database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field

import click
import redis
import requests

from devstack import embedded_redis
from devstack.processes import BINDERY, Process, port_in_use, redis_answers
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from workers.cli import local_stack
from workers.settings import DEFAULT_REDIS_URL

DEV_DATABASE = 15
"""The database `bindery dev` uses on a Redis it found on 127.0.0.1:6379 (the last of Redis's
default 16, the one least likely to hold anything else)."""
OWN_KEYS = ("bindery:*", "rq:*")
"""What `--reset` removes: Bindery's keys and RQ's, nothing else of the database."""
CONSOLE_PATH = "/ops/"
"""Where the web app serves the operator console; the banner names it when it answers."""
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
STOP_GRACE = 10.0
"""Seconds the children are given to stop on SIGTERM before they are killed."""


def with_database(url: str, database: int) -> str:
    """`url` with its database number replaced (`redis://host:port/N`)."""
    base = url.split("?", 1)[0]
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/{database}"


@dataclass
class RedisChoice:
    url: str
    how: str
    embedded: object | None = None
    """The embedded server to stop at the end, or None."""


def choose_redis(embedded_only: bool = False, default_url: str = DEFAULT_REDIS_URL) -> RedisChoice:
    url = os.environ.get("REDIS_URL", "")
    if url and not embedded_only:
        if not redis_answers(url):
            raise click.ClickException(f"REDIS_URL is set but nothing answers at {url}")
        return RedisChoice(url, "REDIS_URL")
    if not embedded_only and redis_answers(default_url):
        return RedisChoice(
            with_database(default_url, DEV_DATABASE),
            f"the Redis answering on {default_url.split('://', 1)[1].rsplit('/', 1)[0]}, "
            f"database {DEV_DATABASE}: bindery dev's own",
        )
    try:
        url, server = embedded_redis.start()
    except embedded_redis.MissingFakeRedis:
        raise click.ClickException(
            "no Redis answers on 127.0.0.1:6379 and fakeredis (the embedded fallback) is not "
            "installed: pip install 'bindery[local]' (or `make dev` in a checkout), set REDIS_URL, "
            "or start redis-server"
        ) from None
    return RedisChoice(
        url, "an embedded Redis (fakeredis) on 127.0.0.1, empty at each start", server
    )


def reset(url: str) -> int:
    """Remove Bindery's and RQ's keys from the database at `url`; how many were removed."""
    client = redis.Redis.from_url(url)
    removed = 0
    try:
        for pattern in OWN_KEYS:
            batch = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) == 1000:
                    removed += client.delete(*batch)
                    batch = []
            if batch:
                removed += client.delete(*batch)
    finally:
        client.close()
    return removed


@dataclass
class DevStack:
    web_port: int = 8000
    emulator_port: int = 8090
    workers: int = 2
    embedded_redis: bool = False
    reset: bool = False
    children: dict[str, Process] = field(default_factory=dict)
    ops_token: str = ""
    """The operator console's sign-in token, made up at start unless BINDERY_OPS_TOKENS is set."""

    def check(self) -> None:
        """Everything that can refuse the start, before anything is printed, written or started."""
        running = local_stack.read(local_stack.STATE_FILE)
        if running is not None:
            raise click.ClickException(
                f"a dev stack already runs in this folder (pid {running.pid}, web at "
                f"{running.web_url}): stop it (Ctrl-C in its shell), or start this one elsewhere"
            )
        if self.web_port == self.emulator_port:
            raise click.ClickException("--port and --emulator-port must differ")
        for option, port in (("--port", self.web_port), ("--emulator-port", self.emulator_port)):
            if port_in_use(port):
                raise click.ClickException(
                    f"port {port} is in use (another stack or server?): choose another with "
                    f"{option}"
                )

    def run(self) -> int:
        self.check()
        choice = choose_redis(self.embedded_redis)
        metrics_directory = tempfile.mkdtemp(prefix="bindery-dev-metrics-")
        state = None
        try:
            click.echo(f"redis:    {choice.url} ({choice.how})")
            if self.reset:
                removed = reset(choice.url)
                click.echo(f"reset:    removed {removed} keys ({', '.join(OWN_KEYS)})")
            api_token = os.environ.get("BINDERY_API_TOKEN") or "dev-" + secrets.token_hex(8)
            ops_tokens = os.environ.get("BINDERY_OPS_TOKENS") or "ops-" + secrets.token_hex(12)
            self.ops_token = ops_tokens.split(",")[0].strip()
            web_url = f"http://127.0.0.1:{self.web_port}"
            emulator_url = f"http://127.0.0.1:{self.emulator_port}"
            env = {
                **os.environ,
                "TWILIO_ACCOUNT_SID": DEFAULT_ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
                "TWILIO_API_BASE_URL": emulator_url,
                "REDIS_URL": choice.url,
                "BINDERY_API_TOKEN": api_token,
                "BINDERY_OPS_TOKENS": ops_tokens,
                "PROMETHEUS_MULTIPROC_DIR": metrics_directory,
            }
            self._start("emulator", ["emulator", "--port", str(self.emulator_port)], env)
            self._wait(emulator_url + "/_emulator/stats", "emulator")
            self._start("web", ["web", "--port", str(self.web_port), "--workers", "2"], env)
            self._wait(web_url + "/healthz", "web")
            self._start("worker", ["worker", "--processes", str(self.workers)], env)
            self._start("clock", ["clock"], env)
            self._point_webhooks(emulator_url, web_url)
            state = local_stack.LocalStack(
                web_url=web_url,
                emulator_url=emulator_url,
                api_token=api_token,
                redis_url=choice.url,
                account_sid=DEFAULT_ACCOUNT_SID,
                auth_token=DEFAULT_AUTH_TOKEN,
                pid=os.getpid(),
            )
            state.write(local_stack.STATE_FILE)
            self._banner(state)
            return self._supervise()
        finally:
            if state is not None:
                state.remove(local_stack.STATE_FILE)  # first: the stack is going away
            self._stop_all()
            shutil.rmtree(metrics_directory, ignore_errors=True)
            if choice.embedded is not None:
                embedded_redis.stop(choice.embedded)

    def _banner(self, state: local_stack.LocalStack) -> None:
        web = state.web_url
        click.echo(f"emulator: {state.emulator_url}  (Twilio Conversations API, /_emulator/stats)")
        click.echo(f"web:      {web}  (webhooks at /twilio/conversations/pre and /post)")
        click.echo(f"api:      {web}/api/v1  (Authorization: Bearer {state.api_token})")
        click.echo(f"metrics:  {web}/metrics  (the same Authorization header)")
        click.echo(f"ready:    {web}/readyz")
        if self._serves(web + CONSOLE_PATH):
            click.echo(
                f"console:  {web}{CONSOLE_PATH}  (sign in with the operator token {self.ops_token})"
            )
        click.echo(f"workers:  {self.workers} processes, and the clock")
        click.echo(
            f"Wrote {local_stack.STATE_FILE}: `bindery demo`, `jobs`, `status`, `cleanup` and "
            "`reconcile` run in this folder use this stack."
        )
        click.echo(
            "The data stays in Redis between runs; `bindery dev --reset` starts empty. "
            "In another shell: .venv/bin/bindery demo"
        )
        click.echo("Ctrl-C stops everything.")

    @staticmethod
    def _serves(url: str) -> bool:
        try:
            return requests.get(url, timeout=2, allow_redirects=False).status_code != 404
        except requests.RequestException:
            return False

    def _start(self, name: str, args: list[str], env: dict) -> None:
        # Every child logs JSON lines on stderr; the emulator's banner (its stdout) would repeat
        # this one's.
        discard = name == "emulator"
        self.children[name] = Process(
            name, [BINDERY, *args], env, log=False, discard_stdout=discard
        )

    def _wait(self, url: str, name: str, timeout: float = 30) -> None:
        try:
            self.children[name].wait_http(url, timeout)
        except RuntimeError as error:
            raise click.ClickException(str(error).strip()) from None

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
                if not child.alive():
                    click.echo(
                        f"{name} exited with {child.popen.returncode}; stopping the stack", err=True
                    )
                    return 1
            stopping.wait(0.5)
        click.echo("stopping...")
        return 0

    def _stop_all(self) -> None:
        """SIGTERM to every child at once; whatever still runs after `STOP_GRACE` is killed."""
        for child in self.children.values():
            child.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in self.children.values():
            child.stop(max(0.1, deadline - time.monotonic()))
