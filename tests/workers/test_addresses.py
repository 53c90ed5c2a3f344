import pytest

from workers.addresses import channel, is_sid, is_valid_address, mask, mask_text


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("+15551230001", True),
        ("whatsapp:+15551230001", True),
        ("15551230001", False),
        ("+0555123", False),
        ("+1555", False),
        ("+1555123000199999", False),
        ("whatsapp:15551230001", False),
        ("", False),
        ("+15551230001\n", False),
        ("+1555１２３0001", False),  # fullwidth digits are digits to `\d`, not to a carrier
        ("+1555123", False),  # fewer than 8 digits
    ],
)
def test_address_validity(address, valid):
    assert is_valid_address(address) is valid


def test_channels():
    assert channel("+15551230001") == "sms"
    assert channel("whatsapp:+15551230001") == "whatsapp"


def test_mask_keeps_too_little_to_dial():
    assert mask("+15551230001") == "+1555*****01"
    assert mask("whatsapp:+15551230001") == "whatsapp:+1555*****01"
    assert "1230" not in mask_text("customer +15551230001 wrote")


def test_sids():
    assert is_sid("CH" + "a" * 32, "CH")
    assert not is_sid("CH" + "a" * 31, "CH")
    assert not is_sid("MB" + "a" * 32, "CH")
    assert not is_sid("CH" + "a" * 32 + "\n", "CH")
