"""The `bindery dev` running in this folder, as its state file (`.bindery-dev.json`) describes it.

`bindery dev` writes the file once its stack answers and removes it when it stops (only its own);
`bindery demo` and every command that needs Twilio or Redis (`jobs`, `cleanup`, `reconcile`,
`status`) read it when the environment names none of `CONNECTION_VARIABLES`. A file is believed
only while the process that wrote it runs, when the current user owns it, and when its Twilio is a
loopback emulator: a stray file can never send credentials anywhere but this machine.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

STATE_FILE = ".bindery-dev.json"
CONNECTION_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "REDIS_URL",
)
"""When the environment sets any of these, it says where Twilio and Redis are: no file is read."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LocalStack:
    web_url: str
    emulator_url: str
    api_token: str
    redis_url: str
    account_sid: str
    auth_token: str = field(repr=False)
    pid: int = 0
    """The `bindery dev` process that wrote the file."""
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    """Tells this run's file from a later run's with the same pid."""

    def environment(self) -> dict[str, str]:
        """The variables a Bindery process reads, pointed at this stack."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_API_BASE_URL": self.emulator_url,
            "REDIS_URL": self.redis_url,
            "BINDERY_API_TOKEN": self.api_token,
            "BINDERY_URL": self.web_url,
        }

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return self.pid > 0

    def write(self, path: str | os.PathLike = STATE_FILE) -> None:
        """Readable by the current user only: the file holds the stack's API token."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(json.dumps(asdict(self), indent=2) + "\n")
        temporary.replace(target)

    def remove(self, path: str | os.PathLike = STATE_FILE) -> bool:
        """Remove the file if it is still this stack's (another run may have replaced it)."""
        if read(path, require_alive=False) != self:
            return False
        Path(path).unlink(missing_ok=True)
        return True


def read(path: str | os.PathLike = STATE_FILE, require_alive: bool = True) -> LocalStack | None:
    """The stack the file describes; None when there is no file, or it is not to be believed."""
    target = Path(path)
    try:
        if target.stat().st_uid != os.getuid():
            return None
        data = json.loads(target.read_text())
        stack = LocalStack(**{k: data[k] for k in LocalStack.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None
    parts = urlsplit(stack.emulator_url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        return None
    if require_alive and not stack.alive():
        return None
    return stack


def environment(
    environ: Mapping[str, str] | None = None, path: str | os.PathLike = STATE_FILE
) -> tuple[Mapping[str, str], LocalStack | None]:
    """The environment a command should read its settings from, and the dev stack it points at
    (None: the environment as it is)."""
    environ = os.environ if environ is None else environ
    if any(environ.get(name) for name in CONNECTION_VARIABLES):
        return environ, None
    stack = read(path)
    if stack is None:
        return environ, None
    return {**environ, **stack.environment()}, stack
