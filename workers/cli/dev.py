"""`bindery dev` and `bindery demo`: the newcomer's path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from workers.cli.common import duration


@click.command()
@click.option("--port", default=8000, show_default=True, help="Port of the web app.")
@click.option("--emulator-port", default=8090, show_default=True, help="Port of the emulator.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="RQ worker processes.",
)
@click.option(
    "--embedded-redis", is_flag=True, help="Use the embedded Redis even when another one answers."
)
def dev(port: int, emulator_port: int, workers: int, embedded_redis: bool) -> None:
    """Run the whole stack locally against the emulator: emulator, web (gunicorn), workers and
    clock, with the emulator's webhooks pointed at the web app. Redis: REDIS_URL if set, else the
    one on 127.0.0.1:6379, else an embedded one. Ctrl-C stops everything."""
    from workers.devstack import DevStack

    stack = DevStack(
        web_port=port, emulator_port=emulator_port, workers=workers, embedded_redis=embedded_redis
    )
    raise SystemExit(stack.run())


@click.command()
@click.option(
    "--state-file",
    default=".bindery-dev.json",
    show_default=True,
    help="Where `bindery dev` wrote its URLs and token.",
)
@click.option(
    "--stale-after",
    default=None,
    help="The stack's stale limit (default BINDERY_STALE_AFTER, or 6h).",
)
@click.option("--seed", default=1, show_default=True, help="Random seed of the scenario.")
def demo(state_file: str, stale_after: str | None, seed: int) -> None:
    """Play a contact centre's morning against a running stack (`bindery dev`, or any stack whose
    TWILIO_API_BASE_URL points at an emulator) and print what happened, duplicate binding attempts
    included. Without the state file, it reads BINDERY_URL, BINDERY_API_TOKEN,
    TWILIO_API_BASE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and REDIS_URL."""
    from workers.demo import Demo, Target

    path = Path(state_file)
    if path.exists():
        target = Target(**json.loads(path.read_text()))
    else:
        missing = [
            n
            for n in ("BINDERY_URL", "BINDERY_API_TOKEN", "TWILIO_API_BASE_URL")
            if not os.environ.get(n)
        ]
        if missing:
            raise click.ClickException(
                f"no {state_file} (is `make dev` running in this folder?) and "
                f"{', '.join(missing)} not set"
            )
        from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

        target = Target(
            web_url=os.environ["BINDERY_URL"].rstrip("/"),
            emulator_url=os.environ["TWILIO_API_BASE_URL"].rstrip("/"),
            api_token=os.environ["BINDERY_API_TOKEN"],
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            account_sid=os.environ.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
            auth_token=os.environ.get("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN),
        )
    limit = duration(stale_after or os.environ.get("BINDERY_STALE_AFTER", "6h"), "--stale-after")
    result = Demo(target, stale_after=limit, seed=seed).run()
    if result["duplicate_binding_attempts"]:
        raise SystemExit(1)
