"""Twilio request signatures, checked with twilio's `RequestValidator`, failing closed.

Twilio signs the URL it requested. Behind a proxy that terminates TLS, the URL Flask sees differs
(scheme, host, port), so the check uses `PUBLIC_BASE_URL` + path + query when that is set. Form bodies
are signed as sorted parameters; JSON bodies through a `bodySHA256` query parameter.
"""

from __future__ import annotations

import hmac
import logging
from functools import wraps
from urllib.parse import quote

from flask import current_app, jsonify, request
from twilio.request_validator import RequestValidator

from workers import metrics

log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL as Twilio requested it: path and query exactly as sent (not re-encoded)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    path = (
        raw.split("?", 1)[0] if raw.startswith("/") else quote(request.script_root + request.path)
    )
    query = request.query_string.decode("latin-1")
    base = current_app.config["BINDERY_SETTINGS"].public_base_url.rstrip("/")
    if not base:
        base = f"{request.scheme}://{request.host}"
    return base + path + (f"?{query}" if query else "")


SIGNED_BODIES = ("application/x-www-form-urlencoded", "application/json")
"""What Twilio posts: form parameters, or JSON signed through `bodySHA256`."""


def is_valid(validator: RequestValidator) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = signed_url()
    try:
        if "bodySHA256" in request.args:
            return validator.validate(url, request.get_data(as_text=True), signature)
        params = request.form if request.method == "POST" else {}
        # The URL exactly as requested is what Twilio signs: one HMAC. `validate` tries the URL
        # with and without its port (two HMACs), for a signer that wrote the port differently.
        if hmac.compare_digest(validator.compute_signature(url, params), signature):
            return True
        return validator.validate(url, params, signature)
    except (TypeError, ValueError, UnicodeError):
        return False  # a body the validator cannot even read was not signed by Twilio


def require_twilio_signature(view):
    """403 unless the request carries a valid `X-Twilio-Signature`. Only BINDERY_ENV=development
    turns the check off, and then every request logs a warning."""

    @wraps(view)
    def checked(*args, **kwargs):
        settings = current_app.config["BINDERY_SETTINGS"]
        if (
            request.method == "POST"
            and request.content_length
            and (request.mimetype not in SIGNED_BODIES)
        ):
            return jsonify(
                error=f"Content-Type {request.mimetype or '(none)'} is not accepted: "
                "send application/x-www-form-urlencoded or application/json"
            ), 415
        if not settings.signatures_required:
            log.warning("signature check skipped (BINDERY_ENV=development) for %s", request.path)
            return view(*args, **kwargs)
        validator = current_app.extensions["bindery"].validator
        if not is_valid(validator):
            current_app.extensions["bindery"].count("signature_failures")
            metrics.SIGNATURE_FAILURES.inc()
            return jsonify(error="invalid or missing X-Twilio-Signature"), 403
        return view(*args, **kwargs)

    return checked
