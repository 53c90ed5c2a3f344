"""Twilio resource SIDs: two letters and 32 lowercase hex digits."""

from __future__ import annotations

import hashlib
import random
import re
import secrets

_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_seeded: random.Random | None = None


def new_sid(prefix: str) -> str:
    """A fresh random SID such as `CH` + 32 hex digits."""
    if _seeded is not None:
        return prefix + f"{_seeded.getrandbits(128):032x}"
    return prefix + secrets.token_hex(16)


def reproducible(seed: int | None) -> None:
    """From now on, SIDs follow `seed` (None: random again), so that an in-process simulation
    that orders things by SID replays exactly."""
    global _seeded
    _seeded = None if seed is None else random.Random(seed)


def derived_sid(prefix: str, seed: str) -> str:
    """A SID that is always the same for the same seed (for the default service)."""
    return prefix + hashlib.sha256(f"{prefix}:{seed}".encode()).hexdigest()[:32]


def is_sid(value: str, prefix: str) -> bool:
    return value.startswith(prefix) and bool(_SID.fullmatch(value))
