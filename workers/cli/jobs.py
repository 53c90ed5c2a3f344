"""`bindery jobs`: failed jobs and conflicts, and replaying failed jobs."""

from __future__ import annotations

import click

from workers import failures
from workers.cli.common import emit_json, runtime, since, table, when
from workers.cli.progress import Progress

FAILED_COLUMNS = ["id", "kind", "conversation", "pair", "code", "error", "attempts", "failed_at"]


def _filters(function):
    function = click.option("--conversation", default="", help="Only this conversation (CH...).")(
        function
    )
    function = click.option("--code", default=0, type=int, help="Only this Twilio error code.")(
        function
    )
    return click.option(
        "--since",
        "since_",
        default=None,
        help="Only failures within this long ago (90s, 15m, 1h, 2d).",
    )(function)


@click.group()
def jobs() -> None:
    """Failed jobs and conflicts: list, inspect, replay."""


@jobs.command("failed")
@_filters
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def failed(conversation: str, code: int, since_: str | None, as_json: bool) -> None:
    """List failed jobs: id, kind, conversation, pair (masked), Twilio code, error, attempts."""
    rt = runtime()
    items = failures.failed(rt, conversation=conversation, code=code, since=since(since_))
    if as_json:
        emit_json([item.to_dict() for item in items])
        return
    rows = [
        {
            **item.to_dict(),
            "conversation": item.conversation_sid,
            "error": item.error[:60],
            "failed_at": when(item.failed_at),
        }
        for item in items
    ]
    click.echo(table(rows, FAILED_COLUMNS))


@jobs.command()
@click.argument("job_id")
def show(job_id: str) -> None:
    """Show one job: its arguments, each attempt, the exception and the Twilio error."""
    info = failures.show(runtime(), job_id)
    if info is None:
        raise click.ClickException(f"no job {job_id}")
    emit_json(info)


@jobs.command()
@click.argument("job_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed job that matches.")
@_filters
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; replay nothing.")
def replay(
    job_ids: tuple[str, ...],
    replay_all: bool,
    conversation: str,
    code: int,
    since_: str | None,
    dry_run: bool,
) -> None:
    """Requeue failed jobs through the same serialized path (an operation that already took effect
    ends `already_present`, never as a duplicate)."""
    if bool(job_ids) == replay_all:
        raise click.UsageError("give job ids, or --all (with optional filters), not both")
    rt = runtime()
    if replay_all:
        job_ids = tuple(
            item.id
            for item in failures.failed(
                rt, conversation=conversation, code=code, since=since(since_)
            )
        )
    if dry_run:
        click.echo(f"would replay {len(job_ids)} job(s)")
        for job_id in job_ids:
            click.echo(f"  {job_id}")
        return
    results: dict[str, int] = {}
    with Progress("replaying", total=len(job_ids)) as progress:
        for job_id in job_ids:
            status = failures.replay(rt, job_id)
            results[status] = results.get(status, 0) + 1
            progress()
    summary = ", ".join(f"{count} {status}" for status, count in sorted(results.items()))
    click.echo(f"replayed {len(job_ids)} job(s): {summary or 'nothing to do'}")


@jobs.command()
@click.option("--since", "since_", default=None, help="Only conflicts within this long ago.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def conflicts(since_: str | None, as_json: bool) -> None:
    """List conflict outcomes: business answers (the pair is held by a busy conversation), not
    failures, and never retried by themselves."""
    items = failures.conflicts(runtime(), since=since(since_))
    if as_json:
        emit_json(items)
        return
    rows = [
        {**item, "at": when(item["at"]), "conversation": item.get("conversation_sid", "")}
        for item in items
    ]
    click.echo(table(rows, ["job_id", "conversation", "holder", "policy", "at"]))
