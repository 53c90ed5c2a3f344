"""Signing in to the console: operator tokens, a signed session cookie, CSRF on every action.

An operator signs in with one of `BINDERY_OPS_TOKENS` (compared in constant time with each). The
session is Flask's signed cookie (`bindery_ops`, path `/ops`, HttpOnly, SameSite=Strict, Secure
when PUBLIC_BASE_URL is https) and holds only the token's fingerprint, the time of sign-in and a
CSRF token. It is signed with a key derived from the operator tokens and Twilio's auth token, so
every web process of a deployment accepts it and changing the tokens signs everyone out. It ends
`SESSION_HOURS` after sign-in, or when its token is no longer configured.

Every page but the sign-in form (and the static files) needs a session: a GET without one is sent
to the sign-in form, anything else is answered 401. Every POST needs the session's CSRF token
(form field `csrf_token` or header `X-CSRF-Token`), the sign-in form's too: 403 otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Flask,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from webhooks.ops.blueprint import blueprint, settings
from workers.settings import Settings

log = logging.getLogger(__name__)

SESSION_HOURS = 8
"""Hours a session lasts after sign-in."""
COOKIE_NAME = "bindery_ops"
PUBLIC_ENDPOINTS = {"ops.sign_in", "ops.static"}
"""The sign-in form and the CSS and JavaScript it wears: public code, nothing secret."""
JSON_ENDPOINTS = {"ops.replay_progress"}
"""Read by the pages' JavaScript: refused with a JSON 401, not sent to the sign-in form."""
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def fingerprint(token: str) -> str:
    """Who signed in, without the token: what the session and the logs hold."""
    return hashlib.sha256(b"bindery-ops-operator\0" + token.encode()).hexdigest()[:12]


def signing_key(settings_: Settings) -> bytes:
    material = "\n".join(sorted(settings_.ops_tokens)) + "\0" + settings_.twilio_auth_token
    return hmac.new(b"bindery ops session", material.encode(), hashlib.sha256).digest()


SESSIONLESS = ("/twilio/", "/api/")
"""Paths signed by Twilio or a bearer token: the console's cookie (path `/ops`) never comes there."""


class ConsoleSessions(SecureCookieSessionInterface):
    """No session for a webhook or an API request: Flask would otherwise build a signing
    serializer for each one, to find no cookie."""

    def open_session(self, app: Flask, request_):
        if request_.path.startswith(SESSIONLESS):
            return None  # Flask's null session
        return super().open_session(app, request_)


def configure(app: Flask, settings_: Settings) -> None:
    app.secret_key = signing_key(settings_)
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/ops",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings_.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        SESSION_REFRESH_EACH_REQUEST=False,
    )


def operator() -> str | None:
    """The signed-in operator's fingerprint, or None when there is no valid session."""
    who, signed_in_at = session.get("operator"), session.get("signed_in_at")
    if not isinstance(who, str) or not isinstance(signed_in_at, int | float):
        return None
    age = time.time() - signed_in_at
    if age > SESSION_HOURS * 3600 or age < -60:
        return None
    known = [hmac.compare_digest(who, fingerprint(t)) for t in settings().ops_tokens]
    return who if any(known) else None


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


@blueprint.app_context_processor
def _template_globals() -> dict:
    if request.blueprint != "ops":
        return {}
    return {"csrf_token": csrf_token, "operator": operator()}


def _csrf_ok() -> bool:
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@blueprint.before_request
def guard():
    if request.endpoint == "ops.static":
        return None
    if request.endpoint != "ops.sign_in" and operator() is None:
        if request.endpoint in JSON_ENDPOINTS:
            return jsonify(error="sign in first"), 401
        if request.method in SAFE_METHODS:
            target = request.full_path if request.query_string else request.path
            return redirect(url_for("ops.sign_in", next=target), 303)
        return _refused("Sign in first", "Your session has ended or was never opened.", 401)
    if request.method not in SAFE_METHODS and not _csrf_ok():
        log.warning("ops: %s %s refused: missing or wrong CSRF token", request.method, request.path)
        return _refused(
            "Missing or wrong CSRF token",
            "The form was not sent by this console's page. Nothing was done.",
            403,
        )
    return None


def _refused(title: str, detail: str, status: int):
    return render_template("ops/message.html", title=title, detail=detail, status=status), status


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the console, never another site."""
    parts = urlsplit(target or "")
    if (
        not target
        or parts.scheme
        or parts.netloc
        or not parts.path.startswith("/ops/")
        or "\\" in target
        or target.startswith("//")
    ):
        return url_for("ops.overview")
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def sign_in():
    tokens = settings().ops_tokens
    if request.method == "GET":
        if operator() is not None:
            return redirect(safe_next(request.args.get("next")), 303)
        return render_template(
            "ops/login.html",
            closed=not tokens,
            signed_out="signed_out" in request.args,
            next=safe_next(request.args.get("next")),
        )
    given = request.form.get("token", "").strip()
    # Compared with every token, always, so the time taken says nothing about which one matched.
    matches = [hmac.compare_digest(given.encode(), t.encode()) for t in tokens]
    if not given or not any(matches):
        log.warning("ops: sign-in refused: wrong or missing operator token")
        page = render_template(
            "ops/login.html",
            closed=not tokens,
            error="That is not an operator token.",
            next=safe_next(request.form.get("next")),
        )
        return page, 401
    who = fingerprint(tokens[matches.index(True)])
    session.clear()
    session.permanent = True
    session.update(operator=who, signed_in_at=time.time(), csrf=secrets.token_urlsafe(32))
    log.info("ops: operator %s signed in", who)
    return redirect(safe_next(request.form.get("next")), 303)


@blueprint.post("/logout")
def sign_out():
    log.info("ops: operator %s signed out", operator())
    session.clear()
    return redirect(url_for("ops.sign_in", signed_out=1), 303)
