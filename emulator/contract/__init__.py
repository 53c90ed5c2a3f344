"""What Twilio's Conversations API promises about its answers, kept in the project.

`conversations_v1.json` holds facts derived from Twilio's OpenAPI description (every operation's
success status, and each resource's field names, types, formats, patterns, enums and nullability),
written by `python -m emulator.contract.derive`; `Contract` checks an answer against them.
"""

from emulator.contract.check import Contract, Operation

__all__ = ["Contract", "Operation"]
