"""`bindery emulator`: run the Twilio Conversations emulator in the foreground."""

from __future__ import annotations

import re

import click

from emulator.config import EmulatorConfig
from emulator.conversations import DATE_UPDATED_CAUSES, check_causes
from emulator.defaults import (
    DATE_UPDATED_ON,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_HOST,
    DEFAULT_PORT,
    WEBHOOK_TIMEOUT,
)
from emulator.server import RunningEmulator, serve
from workers import logs

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


def _account_sid(_: click.Context, __: click.Parameter, value: str) -> str:
    if not _ACCOUNT_SID.fullmatch(value):
        raise click.BadParameter("must be AC followed by 32 hex digits")
    return value


def _causes(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    if value.strip().lower() == "none":
        return ()
    try:
        return check_causes([c.strip() for c in value.split(",") if c.strip()])
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _auth_token(_: click.Context, __: click.Parameter, value: str) -> str:
    if not value:
        raise click.BadParameter("must not be empty")
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--host", default=DEFAULT_HOST, help="Interface to listen on (loopback by default).")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    type=click.IntRange(0, 65535),
    help="TCP port to listen on; 0 picks a free one.",
)
@click.option(
    "--account-sid",
    envvar="TWILIO_ACCOUNT_SID",
    show_envvar=True,
    default=DEFAULT_ACCOUNT_SID,
    callback=_account_sid,
    help="Account SID clients must authenticate with (HTTP Basic user name).",
)
@click.option(
    "--auth-token",
    envvar="TWILIO_AUTH_TOKEN",
    show_envvar=True,
    default=DEFAULT_AUTH_TOKEN,
    callback=_auth_token,
    help="Auth token clients must authenticate with; webhooks are signed with it.",
)
@click.option(
    "--writes-per-second-per-conversation",
    type=click.IntRange(min=1),
    default=None,
    help="Answer 429 (code 20429) past this many participant/message writes and conversation "
    "updates per second to one conversation (Twilio's default is 30). Off if not given.",
)
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Answer 429 (code 20429) while this many REST requests are in flight. Off if not given.",
)
@click.option(
    "--latency-ms",
    type=click.IntRange(min=0),
    default=0,
    help="Delay every REST answer by this many milliseconds.",
)
@click.option(
    "--webhook-timeout",
    type=click.FloatRange(min=0.1),
    default=WEBHOOK_TIMEOUT,
    help="Seconds to wait for a webhook receiver before giving up (Twilio waits 5).",
)
@click.option(
    "--date-updated-on",
    default=",".join(DATE_UPDATED_ON),
    callback=_causes,
    help="What bumps a conversation's date_updated, comma-separated from "
    f"{', '.join(DATE_UPDATED_CAUSES)}, or none. Twilio says only 'the date this resource was "
    "last updated': set this when a test depends on what else does.",
)
@click.option(
    "--omit-idempotency-token",
    is_flag=True,
    help="Send webhooks without I-Twilio-Idempotency-Token (whether Twilio sends it is "
    "unconfirmed), so a receiver's other de-duplication is exercised. POST /_emulator/faults "
    '{"omit_idempotency_token": true} does the same at run time.',
)
@click.option("--quiet", is_flag=True, help="Do not log each request (access lines).")
def emulator_command(
    host: str,
    port: int,
    account_sid: str,
    auth_token: str,
    writes_per_second_per_conversation: int | None,
    max_concurrency: int | None,
    latency_ms: int,
    webhook_timeout: float,
    date_updated_on: tuple[str, ...],
    omit_idempotency_token: bool,
    quiet: bool,
) -> None:
    """Run a stateful stand-in for Twilio's Conversations REST API.

    It enforces Twilio's binding rules (50416 and friends), sends signed webhooks, and has
    emulator-only endpoints under /_emulator/ (stats, reset, faults, clock, inbound SMS, SDK
    actions). Point the official client at it with workers.twilio_http.make_client(...,
    base_url=URL), or set TWILIO_API_BASE_URL=URL.
    """
    # One JSON line per record on stderr, phone numbers masked and the token redacted: the same
    # handler as every other Bindery process.
    logs.configure("INFO", secrets=(auth_token,))
    config = EmulatorConfig(
        account_sid=account_sid,
        auth_token=auth_token,
        writes_per_second_per_conversation=writes_per_second_per_conversation,
        max_concurrency=max_concurrency,
        latency_ms=latency_ms,
        webhook_timeout=webhook_timeout,
        date_updated_on=date_updated_on,
        omit_idempotency_token=omit_idempotency_token,
    )
    # A token that came from the environment may be a real one: show only its end.
    source = click.get_current_context().get_parameter_source("auth_token")
    from_env = source is click.core.ParameterSource.ENVIRONMENT
    shown_token = f"...{auth_token[-4:]} (from TWILIO_AUTH_TOKEN)" if from_env else auth_token

    def announce(running: RunningEmulator) -> None:
        click.echo(f"Twilio Conversations emulator listening on {running.url}")
        click.echo(f"  TWILIO_API_BASE_URL={running.url}")
        click.echo(f"  TWILIO_ACCOUNT_SID={running.account_sid}")
        click.echo(f"  TWILIO_AUTH_TOKEN={shown_token}")
        click.echo(f"  TWILIO_CONVERSATIONS_SERVICE_SID={running.default_service_sid}")
        click.echo(f"Admin: {running.url}/_emulator/stats  (Ctrl+C to stop)")

    serve(config, host=host, port=port, log_requests=not quiet, ready=announce)
