"""Signing requests the way Twilio does, with twilio's own RequestValidator."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator


def sign(url: str, params: dict | None, token: str) -> str:
    return RequestValidator(token).compute_signature(url, params or {})


def json_url(url: str, body: bytes) -> str:
    """Twilio's form for JSON bodies: bodySHA256 in the query string, the URL alone signed."""
    separator = "&" if "?" in url else "?"
    return url + separator + urlencode({"bodySHA256": hashlib.sha256(body).hexdigest()})
