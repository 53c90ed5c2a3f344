"""Address forms per channel (emulator/channels.py), without HTTP."""

from __future__ import annotations

import pytest

from emulator.channels import ADDRESS_TYPES, Binding, channel_of


@pytest.mark.parametrize(
    ("address", "channel"),
    [
        ("+6834001", "sms"),
        ("+15551230001", "sms"),
        ("+" + "1" * 15, "sms"),
        ("whatsapp:+6834001", "whatsapp"),
        ("messenger:2738492049184756", "messenger"),
        ("gbm:agent-3c1d", "gbm"),
        ("rcs:+15551230001", "rcs"),
        ("apple:urn:mbid:AQAAYyUbut6E4B3T9FLv5EbG", "apple"),
        ("email:someone@example.com", "email"),
        ("+123456", None),
        ("+0551230001", None),
        ("+" + "1" * 16, None),
        ("15551230001", None),
        ("+15551230001\n", None),
        ("+１５５５１２３０００１", None),  # full-width digits are not [0-9]
        ("whatsapp:15551230001", None),
        ("messenger:", None),
        ("messenger:a b", None),
        ("chat:agent-7", None),
        ("sms:+15551230001", None),
        ("fax:+15551230001", None),
        ("messenger:" + "1" * 247, None),
    ],
)
def test_channel_of(address, channel):
    assert channel_of(address) == channel


def test_address_types_are_twilios_eight_and_pairs_need_a_proxy():
    assert ADDRESS_TYPES == ("sms", "whatsapp", "messenger", "gbm", "email", "rcs", "apple", "chat")
    assert Binding("sms", "+15551230001", "+15550001111").pair == ("+15551230001", "+15550001111")
    assert Binding("sms", "+15551230001", None).pair is None
