"""The `bindery` command line: one click group; each subcommand builds what it needs from Settings.

- `serve.py`: the long-running processes (web, worker, clock, dev);
- `jobs.py`: failed jobs and conflicts (list, show, replay);
- `operations.py`: cleanup, reconcile, status.
"""

from __future__ import annotations

import click

from emulator.cli import emulator_command
from workers.cli import jobs, operations, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindery")
def main() -> None:
    """Bindery: a lifecycle processor for Twilio Conversations that never attempts a duplicate
    binding. Settings come from the environment (see README and .env.example)."""


main.add_command(emulator_command, "emulator")
main.add_command(serve.web)
main.add_command(serve.worker)
main.add_command(serve.clock)
main.add_command(jobs.jobs)
main.add_command(operations.cleanup)
main.add_command(operations.reconcile)
main.add_command(operations.status)
