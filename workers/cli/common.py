"""What the subcommands share: settings, a runtime, tables, durations."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click

from workers.cli import local_stack
from workers.runtime import Runtime
from workers.settings import Settings, SettingsError, parse_duration
from workers.staleness import format_duration

WHERE_TO_GET = {
    "TWILIO_ACCOUNT_SID": "the Twilio console's Account Info",
    "TWILIO_AUTH_TOKEN": "the Twilio console's Account Info",
    "BINDERY_API_TOKEN": "a long random string of your choosing, which your app sends",
}


def settings(environ=None) -> Settings:
    try:
        return Settings.from_env(environ)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def runtime(*required: str, find_dev_stack: bool = True) -> Runtime:
    """The runtime of an operator command; with `find_dev_stack`, pointed at the `bindery dev`
    running in this folder when the environment names no Twilio or Redis."""
    environ, stack = local_stack.environment() if find_dev_stack else (None, None)
    if stack is not None:
        click.echo(
            f"using the dev stack of {local_stack.STATE_FILE} (pid {stack.pid}, emulator at "
            f"{stack.emulator_url})",
            err=True,
        )
    current = settings(environ)
    missing = [name for name in required if not _is_set(current, name)]
    if missing:
        raise click.ClickException(missing_settings(missing))
    return Runtime.build(current, calls_twilio="TWILIO_AUTH_TOKEN" in required)


def _is_set(current: Settings, name: str) -> bool:
    try:
        current.require(name)
    except SettingsError:
        return False
    return True


def missing_settings(names: list[str]) -> str:
    """The error for settings a command needs and the environment lacks: each one, where to get
    it, and the dev stack's way out."""
    lines = [f"missing required setting(s): {', '.join(names)}"]
    lines += [f"  {name}: from {WHERE_TO_GET[name]}" for name in names if name in WHERE_TO_GET]
    lines.append(
        "  Against the emulator, set TWILIO_API_BASE_URL to its URL as well (without it, calls go "
        "to Twilio); against `make dev`, run the command in the folder where it runs and set none "
        "of these: it reads .bindery-dev.json. .env.example lists every setting."
    )
    return "\n".join(lines)


def since(text: str | None) -> float:
    """`--since 1h` -> the epoch time one hour ago (0 when not given)."""
    if not text:
        return 0.0
    try:
        return time.time() - parse_duration(text, "--since")
    except SettingsError as error:
        raise click.BadParameter(str(error)) from None


def duration(text: str, name: str) -> float:
    try:
        return parse_duration(text, name)
    except SettingsError as error:
        raise click.BadParameter(str(error)) from None


def when(moment: float | str | None) -> str:
    """Epoch seconds or ISO 8601 (as the JSON says it) -> `2026-11-26 20:00:05Z`; `-` for none."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment)) + "Z" if moment else "-"


def ago(moment: float | str | None) -> str:
    """How long ago, for people (`12m 5s`); `-` for none."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
    return format_duration(max(0.0, time.time() - moment)) if moment else "-"


def describe_retry(retry: dict) -> str:
    """`attempt 3 of 9, next at 2026-11-26 20:00:05Z`: a retry in flight (`failures.retry_state`)."""
    head = f"attempt {retry['attempt']} of {retry['of']}"
    if retry["state"] == "waiting" and retry["next_at"]:
        return f"{head}, next at {when(retry['next_at'])}"
    return f"{head}, {retry['state']}"


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
