"""`bindery emulator`: placeholder until the emulator lands."""

import click


@click.command()
def emulator_command() -> None:
    """Run the Twilio Conversations emulator."""
    raise click.ClickException("not built yet")
