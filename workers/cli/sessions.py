"""`bindery pool` and `bindery sessions`: pools of proxy numbers and masked-number sessions, in the
Redis of the environment (or of the `bindery dev` running in this folder), as the API has them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from workers import pools, sessions
from workers.cli.common import emit_json, runtime, table, when


def _refused(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


def _show_pool(connection, name: str, as_json: bool) -> None:
    sessions.settle_pool(connection, name)
    found = pools.show(connection, name)
    if found is None:
        raise click.ClickException(f"no pool {name}")
    if as_json:
        emit_json({"pool": name, "numbers": [n.to_dict() for n in found]})
        return
    click.echo(f"pool {name}: {len(found)} number(s)")
    click.echo(table([n.to_dict() for n in found], ["number", "country", "area_code", "sessions"]))


@click.group("pool")
def pool() -> None:
    """Pools of proxy numbers: list, show, put, add, remove."""


@pool.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_pools(as_json: bool) -> None:
    """Every pool and how many numbers it has."""
    connection = runtime().connection
    rows = [
        {"pool": name, "numbers": len(pools.numbers(connection, name))}
        for name in pools.names(connection)
    ]
    if as_json:
        emit_json(rows)
    else:
        click.echo(table(rows, ["pool", "numbers"]))


@pool.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(name: str, as_json: bool) -> None:
    """A pool's numbers: country, area code, and how many open sessions use each."""
    _show_pool(runtime().connection, name, as_json)


@pool.command("put")
@click.argument("name")
@click.argument("numbers", nargs=-1)
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON as the API takes it: {"numbers": [{"number", "country", "area_code"}, ...]}.',
)
def put(name: str, numbers: tuple[str, ...], path: Path | None) -> None:
    """Create the pool NAME, or replace its numbers, with NUMBERS (labels read from each number)
    or those of --file. Refused while a number it would drop is used by open sessions."""
    entries = [{"number": n} for n in numbers]
    if path is not None:
        try:
            entries += json.loads(path.read_text())["numbers"]
        except (ValueError, KeyError, TypeError) as error:
            raise click.BadParameter(f"{path}: not a pool ({error})", param_hint="--file") from None
    try:
        parsed = [
            pools.make_number(e["number"], e.get("country", ""), e.get("area_code", ""))
            for e in entries
        ]
        connection = runtime().connection
        sessions.settle_pool(connection, name)
        created = pools.put(connection, name, parsed)
    except pools.PoolError as error:
        raise _refused(error) from None
    click.echo(f"pool {name} {'created' if created else 'replaced'}", err=True)
    _show_pool(connection, name, False)


@pool.command("add")
@click.argument("name")
@click.argument("number")
@click.option("--country", default="", help="ISO 3166-1 alpha-2 (default: read from the number).")
@click.option("--area-code", default="", help="Digits (default: read from the number).")
def add(name: str, number: str, country: str, area_code: str) -> None:
    """Add NUMBER (an SMS number, or a whatsapp: sender) to the pool NAME (created if need be),
    or change its labels."""
    try:
        entry = pools.make_number(number, country, area_code)
        created = pools.add(runtime().connection, name, entry)
    except pools.PoolError as error:
        raise _refused(error) from None
    click.echo(f"{'added' if created else 'updated'} {number} in pool {name}")


@pool.command("remove")
@click.argument("name")
@click.argument("number")
def remove(name: str, number: str) -> None:
    """Remove NUMBER from the pool NAME; refused while open sessions use it."""
    connection = runtime().connection
    try:
        sessions.settle_number(connection, number)
        pools.remove(connection, name, number)
    except pools.PoolError as error:
        raise _refused(error) from None
    click.echo(f"removed {number} from pool {name}")


@click.group("sessions")
def sessions_group() -> None:
    """Masked-number sessions: open, show, close."""


@sessions_group.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON as the API answers it.")
def show_session(session_id: str, as_json: bool) -> None:
    """A session: its status, conversation, and each participant's proxy number."""
    found = sessions.get(runtime().connection, session_id)
    if found is None:
        raise click.ClickException(f"no session {session_id}")
    if as_json:
        emit_json(found)
        return
    click.echo(f"session {found['session_id']} ({found['status']}) in pool {found['pool']}")
    click.echo(f"  conversation: {found['conversation_sid'] or '-'}")
    for moment in ("created_at", "opened_at", "closed_at"):
        if found[moment]:
            click.echo(f"  {moment.replace('_at', '')}: {when(found[moment])}")
    if found["error"]:
        click.echo(f"  error: {found['error']}")
    rows = [
        {
            "participant": p.get("identity") or p.get("address"),
            "proxy": p.get("proxy_address") or "-",
            "sid": p.get("participant_sid") or "-",
        }
        for p in found["participants"]
    ]
    click.echo(table(rows, ["participant", "proxy", "sid"]))


@sessions_group.command("open")
@click.option("--pool", "pool_name", default="default", show_default=True)
@click.option("--customer", "customers", multiple=True, help="A customer's address (repeat).")
@click.option("--identity", "identities", multiple=True, help="A chat identity (repeat).")
@click.option("--ttl", default=None, help="Twilio closes it after this long (10m at least).")
@click.option(
    "--number-selection", type=click.Choice(["prefer-sticky", "avoid-sticky"]), default=None
)
@click.option("--geo-match", type=click.Choice(["country", "area-code", "none"]), default=None)
@click.option("--unique-name", default=None)
def open_(
    pool_name: str,
    customers: tuple[str, ...],
    identities: tuple[str, ...],
    ttl: str | None,
    number_selection: str | None,
    geo_match: str | None,
    unique_name: str | None,
) -> None:
    """Open a session, as POST /api/v1/sessions: prints its id (the job opens it)."""
    body = {
        "pool": pool_name,
        "participants": [{"address": c} for c in customers] + [{"identity": i} for i in identities],
        "ttl": ttl,
        "number_selection": number_selection,
        "geo_match": geo_match,
        "unique_name": unique_name,
    }
    try:
        request = sessions.SessionRequest.from_body({k: v for k, v in body.items() if v})
    except sessions.RequestProblem as error:
        raise click.BadParameter(str(error)) from None
    rt = runtime()
    if not pools.exists(rt.connection, request.pool):
        raise click.ClickException(f"no pool {request.pool} (bindery pool put first)")
    opened = sessions.start(rt, request)
    click.echo(opened.session_id)


@sessions_group.command("close")
@click.argument("session_id")
def close(session_id: str) -> None:
    """Close a session: its conversation is closed through the state-change path."""
    try:
        status, job_id = sessions.close(runtime(), session_id)
    except KeyError:
        raise click.ClickException(f"no session {session_id}") from None
    click.echo(
        f"session {session_id} is {status}" + (f"; closing (job {job_id})" if job_id else "")
    )
