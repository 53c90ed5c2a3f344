"""The `bindery` command line: one click group; each subcommand builds what it needs from Settings.

- `serve.py`: the long-running processes (web, worker, clock);
- `dev.py`: the local stack and its demo;
- `jobs.py`: failed jobs and conflicts (list, show, replay);
- `operations.py`: cleanup, reconcile, status.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click


def _metrics_directory() -> None:
    """prometheus-client picks single- or multi-process mode when it is first imported, so the
    shared directory of this host's Bindery processes is chosen here, before the subcommands import
    it; the web's `/metrics` then sums the workers' counts too."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or str(
        Path(tempfile.gettempdir()) / f"bindery-metrics-{os.getuid()}"
    )
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


_metrics_directory()

from emulator.cli import emulator_command  # noqa: E402
from workers.cli import dev, jobs, operations, serve  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindery")
def main() -> None:
    """Bindery: a lifecycle processor for Twilio Conversations that never attempts a duplicate
    binding. Settings come from the environment (see README and .env.example)."""


main.add_command(emulator_command, "emulator")
main.add_command(serve.web)
main.add_command(serve.worker)
main.add_command(serve.clock)
main.add_command(dev.dev)
main.add_command(dev.demo)
main.add_command(jobs.jobs)
main.add_command(operations.cleanup)
main.add_command(operations.reconcile)
main.add_command(operations.status)
