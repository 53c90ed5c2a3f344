"""Messaging bindings: the (address, proxy address) pair of an SMS or WhatsApp participant."""

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

# E.164: a plus and 8 to 15 digits, the first one not zero.
_E164 = r"\+[1-9][0-9]{7,14}"
_CHANNELS = ((WHATSAPP, re.compile(rf"^whatsapp:{_E164}$")), (SMS, re.compile(rf"^{_E164}$")))


@dataclass(frozen=True)
class Binding:
    """A non-chat participant's binding; `type` is `sms` or `whatsapp` as the REST API shows it."""

    type: str
    address: str
    proxy_address: str
    projected_address: str | None = None

    @property
    def pair(self) -> tuple[str, str]:
        return (self.address, self.proxy_address)


def channel_of(address: str) -> str | None:
    """`sms`, `whatsapp`, or None when the address is neither."""
    for channel, pattern in _CHANNELS:
        if pattern.fullmatch(address):
            return channel
    return None


def validate(address: str | None, proxy_address: str | None) -> str:
    """The channel type of a valid pair; raises the Twilio error of the first rule it breaks."""
    if not address:
        raise AddressEmpty()
    if not proxy_address:
        raise ProxyAddressEmpty()
    channel = channel_of(address)
    if channel is None:
        raise InvalidAddress(f"Invalid messaging binding address: {address}")
    proxy_channel = channel_of(proxy_address)
    if proxy_channel is None:
        raise InvalidProxyAddress(f"Invalid messaging binding proxy address: {proxy_address}")
    if channel != proxy_channel:
        raise ChannelTypeMismatch()
    if address == proxy_address:
        raise AddressEqualsProxy()
    return channel
