"""The long-running processes: `bindery web`, `bindery worker`, `bindery clock`."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from workers import metrics
from workers.cli.common import runtime, settings
from workers.settings import SettingsError

WEB_WORKERS = 4
"""gunicorn processes `bindery web` starts by default: two per core of a 2-core host."""
WEB_THREADS = 1
"""Threads per process by default. A webhook is CPU work around one Redis round trip: threads of
one process share its GIL, and one back from Redis waits for it, so single-threaded processes serve
more (B1: 0.43 of the bare app against 0.33 with 2 processes of 4 threads, same settings for both)."""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=lambda: int(os.environ.get("PORT", "8000")),
    type=int,
    show_default="$PORT or 8000",
    help="Port to listen on.",
)
@click.option(
    "--workers",
    default=WEB_WORKERS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes (about two per core).",
)
@click.option(
    "--threads",
    default=WEB_THREADS,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per gunicorn worker (more only for slow requests: they share one GIL).",
)
def web(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the webhooks and the API with gunicorn (`webhooks:create_app()`)."""
    current = settings()
    if not current.development:
        try:
            current.require("TWILIO_AUTH_TOKEN", "BINDERY_API_TOKEN")
        except SettingsError as error:
            raise click.ClickException(str(error)) from None
    metrics.setup()  # gunicorn's master and workers share the host's directory
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--config",
        "python:webhooks.gunicorn_config",
        "webhooks:create_app()",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - gunicorn replaces this process


@click.command()
@click.option(
    "--processes",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="RQ worker processes to run (restarted if one dies).",
)
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def worker(processes: int, burst: bool, log_level: str) -> None:
    """Run RQ worker processes (with the scheduler) that apply Bindery's jobs."""
    from workers.worker import run_pool

    metrics.setup()
    try:
        run_pool(settings(), processes, burst=burst, logging_level=log_level)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.command()
@click.option(
    "--tick",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 60),
    help="Seconds between looks at the schedule.",
)
def clock(tick: float) -> None:
    """Enqueue the periodic jobs (stale cleanup, ledger reconciliation) when they are due.

    Safe to run twice by mistake: each run of a periodic job has one id per time window, and a
    second clock's enqueue of the same id is a no-op."""
    from workers import logs
    from workers.schedule import run_clock

    metrics.setup()
    rt = runtime("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", find_dev_stack=False)
    logs.configure(secrets=(rt.settings.twilio_auth_token, rt.settings.api_token))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run_clock(rt, stop, tick_seconds=tick)
