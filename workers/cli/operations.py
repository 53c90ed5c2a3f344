"""`bindery cleanup`, `bindery reconcile`, `bindery status`."""

from __future__ import annotations

import click

from workers import cleanup as cleanup_module
from workers import reconcile as reconcile_module
from workers import status as status_module
from workers.cli.common import ago, describe_retry, duration, emit_json, runtime, table, when
from workers.cli.progress import Progress
from workers.failures import shorten
from workers.logs import iso_time
from workers.staleness import format_duration


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be closed; close nothing.")
@click.option(
    "--stale-after",
    default=None,
    help="Idle time after which a conversation is stale (default BINDERY_STALE_AFTER).",
)
@click.option(
    "--rate",
    default=cleanup_module.DEFAULT_RATE,
    show_default=True,
    type=float,
    help="Closes per second to schedule at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def cleanup(dry_run: bool, stale_after: str | None, rate: float, as_json: bool) -> None:
    """Close conversations idle longer than the stale limit, through state-change jobs."""
    rt = runtime("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    limit = duration(stale_after, "--stale-after") if stale_after else None
    progress = Progress("conversations scanned")
    report = cleanup_module.run(rt, stale_after=limit, dry_run=dry_run, rate=rate, seen=progress)
    progress.done()
    if as_json:
        emit_json([{**s.to_dict(), "last_activity": iso_time(s.last_activity)} for s in report])
        return
    rows = [
        {
            "conversation": s.conversation_sid,
            "state": s.state,
            "last_activity": when(s.last_activity),
            "reason": s.reason,
            "job": s.job_id,
        }
        for s in report
    ]
    click.echo(table(rows, ["conversation", "state", "last_activity", "reason", "job"]))
    verb = "would close" if dry_run else "closing"
    limit_text = format_duration(rt.settings.stale_after if limit is None else limit)
    click.echo(
        f"{verb} {len(report)} of {progress.count} open conversation(s): idle longer than "
        f"{limit_text}"
    )


@click.command()
@click.option("--dry-run", is_flag=True, help="Report the differences; repair nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def reconcile(dry_run: bool, as_json: bool) -> None:
    """Compare the binding ledger with Twilio (conversations, states, participants), report every
    difference, and repair the ledger."""
    rt = runtime("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
    progress = Progress("conversations checked")
    differences = reconcile_module.run(rt, dry_run=dry_run, seen=progress)
    progress.done()
    if as_json:
        emit_json([d.to_dict() for d in differences])
        return
    rows = [
        {"conversation": d.conversation_sid, "kind": d.kind, "detail": d.detail}
        for d in differences
    ]
    click.echo(table(rows, ["conversation", "kind", "detail"]))
    verb = "found" if dry_run else "repaired"
    click.echo(f"{verb} {len(differences)} difference(s)")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(as_json: bool) -> None:
    """Queue depths, workers and their heartbeats, the jobs retrying now ("attempt 3 of 9, next at
    ..."), failed jobs by code, the clock (host, pid, since when) and its schedule, the ledger's
    size, and the counters that matter."""
    snapshot = status_module.snapshot(runtime())
    if as_json:
        emit_json(snapshot)
        return
    for line in describe_status(snapshot):
        click.echo(line)


def describe_status(snap: dict) -> list[str]:
    """The snapshot as `bindery status` prints it."""
    lines = ["queue:     " + ", ".join(f"{k} {v}" for k, v in snap["queue"].items())]
    lines.append(f"workers:   {len(snap['workers'])}")
    for w in snap["workers"]:
        lines.append(f"  {w['name']}  {w['state']}  heartbeat {w['seconds_since_heartbeat']}s ago")
    retrying = snap["retrying"]
    lines.append(f"retrying:  {len(retrying) or 'none'}")
    for item in retrying:
        what = " ".join(filter(None, (item["conversation_sid"], item["pair"])))
        lines.append(f"  {item['id']}  {item['kind']} {what}: {describe_retry(item['retry'])}")
        lines.append(f"    last error: {shorten(item['retry']['last_error'], 90)}")
    failed = snap["failed_by_code"]
    lines.append("failed:    " + (", ".join(f"code {k}: {v}" for k, v in failed.items()) or "none"))
    clock = snap["clock"]
    if clock:
        pid = f", pid {clock['pid']}" if clock["pid"] else ""
        since = f", running since {when(clock['since'])} ({ago(clock['since'])})"
        lines.append(f"clock:     host {clock['host']}{pid}{since if clock['since'] else ''}")
    else:
        lines.append("clock:     not running")
    for name, entry in snap["schedule"].items():
        every = format_duration(entry["interval"])
        lines.append(f"  {name} every {every}, next at {when(entry['next_at'])}")
    ledger = snap["ledger"]
    lines.append(f"ledger:    {ledger['conversations']} conversations, {ledger['pairs']} pairs")
    counters = snap["counters"]
    lines.append(
        "counters:  " + (", ".join(f"{k} {v}" for k, v in sorted(counters.items())) or "none")
    )
    return lines
