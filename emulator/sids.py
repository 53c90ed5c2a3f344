"""Twilio resource SIDs: two letters and 32 lowercase hex digits."""

from __future__ import annotations

import hashlib
import re
import secrets

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def new_sid(prefix: str) -> str:
    """A fresh random SID such as `CH` + 32 hex digits."""
    return prefix + secrets.token_hex(16)


def derived_sid(prefix: str, seed: str) -> str:
    """A SID that is always the same for the same seed (for the default service)."""
    return prefix + hashlib.sha256(f"{prefix}:{seed}".encode()).hexdigest()[:32]


def is_sid(value: str, prefix: str) -> bool:
    return value.startswith(prefix) and bool(_SID.fullmatch(value))
