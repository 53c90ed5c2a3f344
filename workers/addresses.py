"""Addresses and SIDs: the one home of what Bindery accepts, and of how an address appears in a log
line or a page.

Twilio validates addresses itself (50407/50408: "valid syntax for the channel, at most 256
characters"), for channels Bindery need not know (`sms` as E.164 of any valid length, `whatsapp:`,
`messenger:`, `gbm:`, `rcs:`, `apple:`, `email:` ...). So the app's requests are refused only for
what Twilio surely would refuse: an empty or over-long address, one with spaces or control
characters, an SMS or WhatsApp number that is not E.164 (a `+` and 3 to 15 ASCII digits), a pair
whose two addresses are the same or of different channels. What Twilio itself sends (webhooks) is
checked for structure only. Everything accepted is keyed exactly as given (`keys.pair_id`).
"""

from __future__ import annotations

import re

MAX_ADDRESS = 256
"""Characters Twilio takes in an Address, ProxyAddress or ProjectedAddress."""

_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_CHANNEL_PREFIX = re.compile(r"^([a-z][a-z0-9_-]{0,31}):")
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f]")
_E164 = re.compile(r"\+[0-9]{3,15}")  # [0-9], not \d: other scripts' digits are not dialled
E164_CHANNELS = ("sms", "whatsapp")
"""Channels whose addresses are phone numbers in E.164."""


def channel(address: str) -> str:
    """`sms` for a bare number, else the channel prefix before the colon (`whatsapp`, ...)."""
    match = _CHANNEL_PREFIX.match(address)
    return match.group(1) if match else "sms"


def address_problem(address: str, *, from_twilio: bool = False) -> str | None:
    """Why Twilio would surely refuse this address, or None. `from_twilio`: Twilio sent it (a
    webhook), so only its structure is checked."""
    if not address:
        return "is empty"
    if len(address) > MAX_ADDRESS:
        return f"is longer than {MAX_ADDRESS} characters"
    if _UNPRINTABLE.search(address):
        return "contains spaces or control characters"
    kind = channel(address)
    number = address[len(kind) + 1 :] if address.startswith(f"{kind}:") else address
    if not from_twilio and kind in E164_CHANNELS and not _E164.fullmatch(number):
        return f"is not an E.164 number (+ and 3 to 15 digits) for {kind}"
    return None


def pair_problem(address: str, proxy_address: str) -> tuple[str, str] | None:
    """(field, problem) for a pair Twilio would surely refuse, or None."""
    for name, value in (("address", address), ("proxy_address", proxy_address)):
        problem = address_problem(value)
        if problem:
            return name, problem
    if address == proxy_address:
        return "proxy_address", "equals address"
    if channel(address) != channel(proxy_address):
        return (
            "proxy_address",
            f"is a {channel(proxy_address)} address, address a {channel(address)} one",
        )
    return None


def is_sid(value: str, prefix: str) -> bool:
    return bool(_SID.fullmatch(value)) and value.startswith(prefix)


def mask(address: str) -> str:
    """`+15551230001` -> `+1555*****01`, `messenger:4839203948` -> `messenger:48392****48`:
    enough to tell addresses apart in a log, not to reach anyone."""
    if not address:
        return address
    match = _CHANNEL_PREFIX.match(address)
    prefix = match.group(0) if match else ""
    rest = address[len(prefix) :]
    if len(rest) <= 6:
        return prefix + "*" * len(rest)
    return prefix + rest[:5] + "*" * (len(rest) - 7) + rest[-2:]


_ADDRESS_IN_TEXT = re.compile(
    r"\+[0-9]{6,15}|\b(?:whatsapp|messenger|gbm|rcs|apple|email|sms):[^\s|,;\"'<>)]+"
)


def mask_text(text: str) -> str:
    """Every phone number and channel address in free text, masked."""
    return _ADDRESS_IN_TEXT.sub(lambda m: mask(m.group(0)), text)
