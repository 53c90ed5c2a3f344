"""A stateful emulator of Twilio's Conversations REST API that enforces the binding rules.

Start one with `start_in_thread()` (tests) or `bindery emulator` (the CLI), and point the official
client at its URL with `workers.twilio_http.make_client(sid, token, base_url=url)`.
"""

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, DEFAULT_SERVICE_SID
from emulator.server import RunningEmulator, serve, start_in_thread

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_SERVICE_SID",
    "EmulatorConfig",
    "RunningEmulator",
    "create_app",
    "serve",
    "start_in_thread",
]
