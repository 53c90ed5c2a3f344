"""Where a phone number is: its country and area code, for matching a customer with a proxy number
of the same place (a session's `geo_match`).

Read from the number itself with Google's libphonenumber metadata (`phonenumberslite`): the
country is the region the number belongs to (`+14155550100` is `US`, `+14165550100` `CA`), or the
main region of its calling code when the number is not a valid one (the `+1555...` numbers of
tests and examples are `US`); the area code is the geographic area code libphonenumber knows
(`415`, `20` for London), the first three digits of any North American number, and none for
numbers that have none (most mobile numbers outside North America). A pool number's labels, when
given, are used instead of what its number says.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from workers.addresses import E164_CHANNELS, channel

NANP_CALLING_CODE = 1
NANP_AREA_CODE_DIGITS = 3


@dataclass(frozen=True)
class Place:
    country: str = ""
    """ISO 3166-1 alpha-2 (`US`), or "" when unknown."""
    area_code: str = ""
    """Digits, or "" when the number has none."""


def e164(address: str) -> str:
    """The phone number of an SMS or WhatsApp address (`whatsapp:+1555...` -> `+1555...`), or ""
    for any other channel."""
    kind = channel(address)
    if kind not in E164_CHANNELS:
        return ""
    return address[len(kind) + 1 :] if address.startswith(f"{kind}:") else address


def place(address: str) -> Place:
    """The country and area code of an SMS or WhatsApp address, as far as its digits tell."""
    number = e164(address)
    if not number:
        return Place()
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return Place()
    country = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code) or ""
    )
    if country == phonenumbers.UNKNOWN_REGION:
        country = ""
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code == NANP_CALLING_CODE:
        area = national[:NANP_AREA_CODE_DIGITS]
    else:
        area = national[: phonenumbers.length_of_geographical_area_code(parsed)]
    return Place(country=country, area_code=area)
