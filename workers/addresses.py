"""Addresses and SIDs: what is valid, and how a phone number appears in a log line."""

from __future__ import annotations

import re

# fullmatch and [0-9] throughout: `$` lets a trailing newline through, and `\d` any script's digits.
E164 = re.compile(r"\+[1-9][0-9]{7,14}")  # 8 to 15 digits, as Twilio takes them
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_CHANNEL_PREFIX = re.compile(r"^(whatsapp|messenger):")


def channel(address: str) -> str:
    """`sms` for an E.164 number, else the prefix before the colon (`whatsapp`, ...)."""
    match = _CHANNEL_PREFIX.match(address)
    return match.group(1) if match else "sms"


def is_valid_address(address: str) -> bool:
    """E.164 (`+15551230001`) or a channel-prefixed E.164 (`whatsapp:+15551230001`)."""
    return bool(E164.fullmatch(_CHANNEL_PREFIX.sub("", address, count=1)))


def is_sid(value: str, prefix: str) -> bool:
    return bool(_SID.fullmatch(value)) and value.startswith(prefix)


def mask(address: str) -> str:
    """`+15551230001` -> `+1555*****01`: enough to tell numbers apart in a log, not to dial one."""
    if not address:
        return address
    match = _CHANNEL_PREFIX.match(address)
    prefix = match.group(0) if match else ""
    number = address[len(prefix) :]
    if len(number) <= 6:
        return prefix + "*" * len(number)
    return prefix + number[:5] + "*" * (len(number) - 7) + number[-2:]


_PHONE_IN_TEXT = re.compile(r"\+[0-9]{7,15}")


def mask_text(text: str) -> str:
    """Every E.164-looking number in free text, masked."""
    return _PHONE_IN_TEXT.sub(lambda m: mask(m.group(0)), text)
