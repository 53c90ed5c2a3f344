"""The `bindery` command line: one click group; each subcommand builds what it needs from Settings.

- `serve.py`: the long-running processes (web, worker, clock);
- `jobs.py`: failed jobs and conflicts (list, show, replay);
- `operations.py`: cleanup, reconcile, status;
- `sessions.py`: pools of proxy numbers and masked-number sessions (`bindery pool`, `sessions`);
- `local_stack.py`: the `bindery dev` running in this folder, which the operator commands use;
- `dev`, `demo` (`devstack/cli.py`) and `emulator` (`emulator/cli.py`) are loaded only when asked
  for, from the `local` extra: the production commands never import the emulator or the dev stack.

Importing this package changes nothing: the entry points set up what their process needs.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import click

from workers.cli import jobs, operations, serve, sessions

EXTRA = "pip install 'bindery[local]' (in a checkout: make install)"


@dataclass(frozen=True)
class LazyCommand:
    target: str
    """`module:attribute` of the click command."""
    help: str
    """Its one-line help, shown by `bindery --help` without importing it."""
    needs: tuple[str, ...] = ()
    """Modules of the `local` extra it needs beyond the emulator and devstack packages."""


LOCAL_COMMANDS = {
    "dev": LazyCommand(
        "devstack.cli:dev", "Run the whole stack locally against the emulator.", ("fakeredis",)
    ),
    "demo": LazyCommand("devstack.cli:demo", "Play a contact centre's morning against a stack."),
    "emulator": LazyCommand(
        "emulator.cli:emulator_command", "Run the Twilio Conversations emulator."
    ),
}
"""Development commands, from the `local` extra."""


class BinderyGroup(click.Group):
    """A group whose development commands are imported only when one of them runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *LOCAL_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in LOCAL_COMMANDS:
            return super().get_command(ctx, name)
        command = LOCAL_COMMANDS[name]
        module, attribute = command.target.split(":")
        for needed in command.needs:
            if not _installed(needed):
                return _missing_extra(name, needed)
        try:
            return getattr(importlib.import_module(module), attribute)
        except ImportError as error:
            return _missing_extra(name, error.name or str(error))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in LOCAL_COMMANDS:
                rows.append((name, LOCAL_COMMANDS[name].help + " (local extra)"))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _missing_extra(name: str, missing: str) -> click.Command:
    @click.command(name, add_help_option=False, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args: tuple[str, ...]) -> None:
        raise click.ClickException(
            f"`bindery {name}` is a development command and needs the local extra, which is not "
            f"installed (no module {missing}): {EXTRA}"
        )

    return missing


@click.group(cls=BinderyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindery")
def main() -> None:
    """Bindery: a lifecycle processor for Twilio Conversations that never attempts a duplicate
    binding. Settings come from the environment (see README and .env.example)."""


main.add_command(serve.web)
main.add_command(serve.worker)
main.add_command(serve.clock)
main.add_command(jobs.jobs)
main.add_command(operations.cleanup)
main.add_command(operations.reconcile)
main.add_command(operations.status)
main.add_command(sessions.pool)
main.add_command(sessions.sessions_group)
