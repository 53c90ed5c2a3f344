"""`bindery dev` and `bindery demo`: the newcomer's path (loaded by `bindery` only when asked for)."""

from __future__ import annotations

import os

import click

from workers.cli import local_stack
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
@click.option(
    "--reset",
    is_flag=True,
    help="Remove Bindery's and RQ's keys (bindery:*, rq:*) from the stack's Redis database first.",
)
def dev(port: int, emulator_port: int, workers: int, embedded_redis: bool, reset: bool) -> None:
    """Run the whole stack locally against the emulator: emulator, web (gunicorn), workers and
    clock, with the emulator's webhooks pointed at the web app, and write .bindery-dev.json for
    the other commands run in this folder. Redis: REDIS_URL if set, else database 15 of the one on
    127.0.0.1:6379 (kept between runs; --reset empties it), else an embedded one. Ctrl-C stops
    everything."""
    from devstack.stack import DevStack

    stack = DevStack(
        web_port=port,
        emulator_port=emulator_port,
        workers=workers,
        embedded_redis=embedded_redis,
        reset=reset,
    )
    raise SystemExit(stack.run())


@click.command()
@click.option(
    "--state-file",
    default=local_stack.STATE_FILE,
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
    TWILIO_API_BASE_URL points at an emulator), then a round of masked rider/driver trips over a
    pool of 10 numbers, and print what happened, duplicate binding attempts included. Without a running `bindery dev` in this folder, it reads BINDERY_URL,
    BINDERY_API_TOKEN, TWILIO_API_BASE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and REDIS_URL."""
    from devstack.demo import Demo, Rides, Target
    from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN

    stack = local_stack.read(state_file)
    if stack is not None:
        target = Target(
            web_url=stack.web_url,
            emulator_url=stack.emulator_url,
            api_token=stack.api_token,
            redis_url=stack.redis_url,
            account_sid=stack.account_sid,
            auth_token=stack.auth_token,
        )
    else:
        missing = [
            n
            for n in ("BINDERY_URL", "BINDERY_API_TOKEN", "TWILIO_API_BASE_URL")
            if not os.environ.get(n)
        ]
        if missing:
            raise click.ClickException(
                f"no running `bindery dev` in this folder ({state_file}) and "
                f"{', '.join(missing)} not set: start `make dev` here, or set them"
            )
        target = Target(
            web_url=os.environ["BINDERY_URL"].rstrip("/"),
            emulator_url=os.environ["TWILIO_API_BASE_URL"].rstrip("/"),
            api_token=os.environ["BINDERY_API_TOKEN"],
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            account_sid=os.environ.get("TWILIO_ACCOUNT_SID", DEFAULT_ACCOUNT_SID),
            auth_token=os.environ.get("TWILIO_AUTH_TOKEN", DEFAULT_AUTH_TOKEN),
        )
    limit = duration(stale_after or os.environ.get("BINDERY_STALE_AFTER", "6h"), "--stale-after")
    demo = Demo(target, stale_after=limit, seed=seed)
    result = demo.run()
    rides = Rides(demo).run()
    if result["duplicate_binding_attempts"] or rides["duplicate_binding_attempts"]:
        raise SystemExit(1)
