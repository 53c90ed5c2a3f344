"""The `bindery` command line: one click group; each subcommand builds what it needs from Settings."""

from __future__ import annotations

import click

from emulator.cli import emulator_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bindery")
def main() -> None:
    """Bindery: a lifecycle processor for Twilio Conversations that never attempts a duplicate
    binding."""


main.add_command(emulator_command, "emulator")
