"""What the subcommands share: settings, a runtime, tables, durations."""

from __future__ import annotations

import json
import time

import click

from workers.runtime import Runtime
from workers.settings import Settings, SettingsError, parse_duration


def settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


def runtime(*required: str) -> Runtime:
    current = settings()
    try:
        current.require(*required)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    return Runtime.build(current, calls_twilio="TWILIO_AUTH_TOKEN" in required)


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


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + "Z" if epoch else "-"


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
