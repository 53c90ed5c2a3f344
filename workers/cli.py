"""The `bindery` command line: one click group; each subcommand builds what it needs from Settings."""

from __future__ import annotations

import os
import sys

import click

from emulator.cli import emulator_command
from workers.settings import Settings, SettingsError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindery")
def main() -> None:
    """Bindery: a lifecycle processor for Twilio Conversations that never attempts a duplicate
    binding. Settings come from the environment (see README and .env.example)."""


main.add_command(emulator_command, "emulator")


@main.command()
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
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes.",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Threads per gunicorn worker.",
)
def web(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the webhooks and the API with gunicorn (`webhooks:create_app()`)."""
    settings = _settings()
    if not settings.development:
        try:
            settings.require("TWILIO_AUTH_TOKEN", "BINDERY_API_TOKEN")
        except SettingsError as error:
            raise click.ClickException(str(error)) from None
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
        "--worker-class",
        "gthread",
        "--graceful-timeout",
        "10",
        "webhooks:create_app()",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - gunicorn replaces this process


@main.command()
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

    settings = _settings()
    try:
        run_pool(settings, processes, burst=burst, logging_level=log_level)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
