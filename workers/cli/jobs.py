"""`bindery jobs`: failed jobs and conflicts, and replaying failed jobs."""

from __future__ import annotations

import click

from workers import failures
from workers.cli.common import describe_retry, emit_json, runtime, since, table, when
from workers.cli.progress import Progress

FAILED_COLUMNS = [
    "id",
    "kind",
    "conversation",
    "pair",
    "code",
    "operation",
    "error",
    "attempts",
    "failed_at",
]
ERROR_WIDTH = 60
"""Characters of the error shown in `jobs failed`'s table (cut between words); --json has it all."""


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
    """List failed jobs: id, kind, conversation, pair (masked), code (Twilio's, or the HTTP status
    when Twilio gave none), the Twilio call that failed, error, attempts."""
    rt = runtime()
    items = failures.failed(rt, conversation=conversation, code=code, since=since(since_))
    if as_json:
        emit_json([item.to_dict() for item in items])
        return
    rows = [
        {
            **item.to_dict(),
            "conversation": item.conversation_sid,
            "error": failures.shorten(item.error, ERROR_WIDTH),
            "attempts": item.attempt_count,
            "failed_at": when(item.failed_at),
        }
        for item in items
    ]
    click.echo(table(rows, FAILED_COLUMNS))


@jobs.command()
@click.argument("job_id")
def show(job_id: str) -> None:
    """Show one job as JSON (as GET /api/v1/jobs/<id> does): its arguments, each attempt (with
    its code, message and Twilio operation), a retry in flight ("attempt 3 of 9, next at ..."),
    the outcome or the exception."""
    info = failures.show(runtime(), job_id)
    if info is None:
        raise click.ClickException(f"no job {job_id}")
    if info["retry"]:
        click.echo(f"retrying: {describe_retry(info['retry'])}", err=True)
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
    ends `already_present`, never as a duplicate). Exits 1 when a job id given is unknown."""
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
    missing = []
    with Progress("replaying", total=len(job_ids)) as progress:
        for job_id in job_ids:
            status = failures.replay(rt, job_id)
            results[status] = results.get(status, 0) + 1
            if status == "missing":
                missing.append(job_id)
            progress()
    summary = ", ".join(f"{count} {status}" for status, count in sorted(results.items()))
    click.echo(f"replayed {len(job_ids)} job(s): {summary or 'nothing to do'}")
    if missing:
        raise click.ClickException("no job with id " + ", ".join(missing))


@jobs.command()
@click.option("--since", "since_", default=None, help="Only conflicts within this long ago.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def conflicts(since_: str | None, as_json: bool) -> None:
    """List conflict outcomes: business answers (the pair is held by a busy conversation), not
    failures, and never retried by themselves."""
    items = failures.conflict_items(runtime(), since=since(since_))
    if as_json:
        emit_json(items)
        return
    rows = [
        {**item, "at": when(item["at"]), "conversation": item.get("conversation_sid", "")}
        for item in items
    ]
    click.echo(table(rows, ["id", "conversation", "holder", "policy", "at"]))
