import pytest

from workers.addresses import address_problem, channel, is_sid, mask, mask_text, pair_problem


@pytest.mark.parametrize(
    "address",
    [
        "+15551230001",
        "+6834123",  # Niue: four-digit subscriber numbers are valid E.164
        "whatsapp:+15551230001",
        "messenger:4839203948202",
        "gbm:2fe0ba8c-5f27-4f30-a0b8-1e2f8a0e3c5d",
        "rcs:bindery_agent",
    ],
)
def test_what_twilio_may_accept_is_passed_on(address):
    assert address_problem(address) is None


@pytest.mark.parametrize(
    "address", ["15551230001", "+1555١٢٣٠٠٠١", "+1５５５１２３０００１", "whatsapp:5551230001"]
)
def test_sms_and_whatsapp_addresses_are_e164(address):
    assert "E.164" in address_problem(address)
    assert address_problem(address, from_twilio=True) is None  # Twilio's own word is taken


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("", "is empty"),
        ("+1" + "5" * 300, "is longer than 256 characters"),
        ("+15551230001\n", "contains spaces or control characters"),
        ("+1 555 123 0001", "contains spaces or control characters"),
    ],
)
def test_what_twilio_surely_refuses_is_named(address, problem):
    assert address_problem(address) == problem


def test_pairs():
    assert pair_problem("+15551230001", "+15550001111") is None
    assert pair_problem("messenger:4839203948202", "messenger:108234920394") is None
    assert pair_problem("+15551230001", "+15551230001") == ("proxy_address", "equals address")
    field, problem = pair_problem("+15551230001", "whatsapp:+15550001111")
    assert field == "proxy_address" and "whatsapp" in problem and "sms" in problem
    assert pair_problem("", "+15550001111") == ("address", "is empty")


def test_channels():
    assert channel("+15551230001") == "sms"
    assert channel("whatsapp:+15551230001") == "whatsapp"
    assert channel("messenger:4839203948202") == "messenger"


def test_mask_keeps_too_little_to_dial():
    assert mask("+15551230001") == "+1555*****01"
    assert mask("whatsapp:+15551230001") == "whatsapp:+1555*****01"
    assert mask("messenger:4839203948202") == "messenger:48392******02"
    assert "1230" not in mask_text("customer +15551230001 wrote")
    assert "39203948" not in mask_text("from messenger:4839203948202, again")
    assert "4123" not in mask_text("Niue +6834123 calling")


def test_sids():
    assert is_sid("CH" + "a" * 32, "CH")
    assert not is_sid("CH" + "a" * 31, "CH")
    assert not is_sid("MB" + "a" * 32, "CH")
    assert not is_sid("CH" + "a" * 32 + "\n", "CH")
