"""Channels and the address forms each takes: what a participant's MessagingBinding may hold.

Twilio's 50407/50408 say only "valid syntax for the channel, at most 256 characters", so the
emulator takes every form Twilio documents and refuses only what no channel could carry:
- SMS: E.164, a plus and 7 to 15 digits, the first not zero (the shortest numbering plans, such
  as Niue's `+683 4xxx`, have 7).
- WhatsApp: `whatsapp:` and an E.164 number.
- Other channels: `<channel>:<id>` for messenger (`messenger:<page-scoped user id>`, with
  `messenger:<page id>` as the proxy address), gbm, rcs, apple and email, the id being any run of
  printable characters without white space.
Chat participants have an identity instead (`chat` is an Address Configuration type only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.errors import (
    AddressEmpty,
    AddressEqualsProxy,
    ChannelTypeMismatch,
    InvalidAddress,
    InvalidProxyAddress,
    ProxyAddressEmpty,
)

SMS = "sms"
WHATSAPP = "whatsapp"
MESSENGER = "messenger"
GBM = "gbm"
EMAIL = "email"
RCS = "rcs"
APPLE = "apple"
CHAT = "chat"

ADDRESS_TYPES = (SMS, WHATSAPP, MESSENGER, GBM, EMAIL, RCS, APPLE, CHAT)
"""Twilio's address types (Address Configuration `Type`)."""

PREFIXED = (WHATSAPP, MESSENGER, GBM, EMAIL, RCS, APPLE)
"""The channels whose addresses start with `<channel>:`."""

MAX_ADDRESS_LENGTH = 256

# fullmatch and [0-9]: `$` lets a trailing newline through, and `\d` any script's digits.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CHANNEL_ID = re.compile(r"[!-~]+")  # printable ASCII, no white space


@dataclass(frozen=True)
class Binding:
    """A non-chat participant's binding; `type` is the channel as the REST API shows it.

    `proxy_address` is None for a Group MMS participant (an SMS address and no proxy address):
    it holds no pair."""

    type: str
    address: str
    proxy_address: str | None
    projected_address: str | None = None

    @property
    def pair(self) -> tuple[str, str] | None:
        """The (address, proxy address) pair the binding rule is about, if the binding has one."""
        return (self.address, self.proxy_address) if self.proxy_address else None


def channel_of(address: str) -> str | None:
    """The channel of a valid address, or None when no channel takes it."""
    if len(address) > MAX_ADDRESS_LENGTH:
        return None
    if E164.fullmatch(address):
        return SMS
    prefix, colon, rest = address.partition(":")
    if not colon or prefix not in PREFIXED:
        return None
    pattern = E164 if prefix == WHATSAPP else _CHANNEL_ID
    return prefix if pattern.fullmatch(rest) else None


def validate_address(address: str | None) -> str:
    """The channel of a valid address; 50411 when empty, 50407 when no channel takes it."""
    if not address:
        raise AddressEmpty()
    channel = channel_of(address)
    if channel is None:
        raise InvalidAddress(f"Invalid messaging binding address: {address}")
    return channel


def validate_pair(address: str | None, proxy_address: str | None) -> str:
    """The channel of a valid pair; raises the Twilio error of the first rule it breaks."""
    if not address:
        raise AddressEmpty()
    if not proxy_address:
        raise ProxyAddressEmpty()
    channel = validate_address(address)
    proxy_channel = channel_of(proxy_address)
    if proxy_channel is None:
        raise InvalidProxyAddress(f"Invalid messaging binding proxy address: {proxy_address}")
    if channel != proxy_channel:
        raise ChannelTypeMismatch()
    if address == proxy_address:
        raise AddressEqualsProxy()
    return channel
