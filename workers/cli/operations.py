"""`bindery cleanup`, `bindery reconcile`, `bindery status`."""

from __future__ import annotations

import click

from workers import cleanup as cleanup_module
from workers import reconcile as reconcile_module
from workers import status as status_module
from workers.cli.common import duration, emit_json, runtime, table, when
from workers.cli.progress import Progress


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
        emit_json([s.to_dict() for s in report])
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
    click.echo(f"{verb} {len(report)} of {progress.count} open conversation(s)")


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
    """Queue depths, workers and their heartbeats, failed jobs by Twilio code, the schedule, the
    ledger's size, and the counters that matter."""
    snapshot = status_module.snapshot(runtime())
    if as_json:
        emit_json(snapshot)
        return
    queue = snapshot["queue"]
    click.echo("queue:     " + ", ".join(f"{k} {v}" for k, v in queue.items()))
    click.echo(f"workers:   {len(snapshot['workers'])}")
    for w in snapshot["workers"]:
        click.echo(f"  {w['name']}  {w['state']}  heartbeat {w['seconds_since_heartbeat']}s ago")
    failed = snapshot["failed_by_code"]
    click.echo("failed:    " + (", ".join(f"code {k}: {v}" for k, v in failed.items()) or "none"))
    click.echo(f"clock:     {snapshot['clock'] or 'not running'}")
    for name, entry in snapshot["schedule"].items():
        click.echo(f"  {name} every {entry['interval']:g}s, next at {when(entry['next_at'])}")
    ledger = snapshot["ledger"]
    click.echo(f"ledger:    {ledger['conversations']} conversations, {ledger['pairs']} pairs")
    counters = snapshot["counters"]
    click.echo(
        "counters:  " + (", ".join(f"{k} {v}" for k, v in sorted(counters.items())) or "none")
    )
