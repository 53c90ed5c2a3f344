"""Security: tokens on every route, signatures that cannot be skipped or redirected, JSON-only job
payloads, Bindery's keys under `bindery:`, and logs free of secrets, signatures and full numbers.

The route tests enumerate the Flask url_map, so a route added later is checked without anyone
remembering to add it here: it must refuse a missing or wrong token unless it is one of the
reviewed exceptions below. The operator's console (`/ops`) is opened by a signed session cookie
instead: each of its routes must refuse every request without a valid session, whatever token it
carries, and every POST without the session's CSRF token.
"""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from urllib.parse import urlencode

import fakeredis
import pytest
from flask.sessions import SecureCookieSessionInterface
from twilio.request_validator import RequestValidator

from tests.conftest import ACCOUNT_SID, API_TOKEN, AUTH_TOKEN, make_settings
from webhooks import create_app
from webhooks.ops.session import fingerprint
from workers.settings import Settings, SettingsError

CH = "CH" + "c" * 32
SIGNED = "/twilio/"
"""Twilio's webhooks: protected by X-Twilio-Signature, not by the token."""
PUBLIC = {"/healthz", "/readyz", "/api/v1/openapi.json"}
"""Probes an orchestrator calls without credentials, and the API's description (requests, no
data); they must say nothing secret."""
SESSION = "/ops"
"""The operator's console: opened by a session cookie (signed in with an operator token)."""
SESSION_PUBLIC = {"/ops/login", "/ops/static/<path:filename>"}
"""The sign-in form and the CSS and JavaScript it wears: they must say nothing secret."""
SESSION_JSON = {"/ops/replays/<batch_id>/progress"}
"""Read by the console's JavaScript: refused with a JSON 401 instead of a redirect."""
OPS_TOKEN = "operator-token-0123456789"
WRONG_TOKENS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": API_TOKEN},
    {"Authorization": f"Basic {API_TOKEN}"},
    {"Authorization": f"Token {API_TOKEN}"},
    {"Authorization": f"Bearer {API_TOKEN}x"},
    {"Authorization": f"Bearer {API_TOKEN[:-1]}"},
    {"Authorization": f"Bearer {API_TOKEN.upper()}"},
    {"Authorization": f"Bearer {AUTH_TOKEN}"},  # Twilio's token is not the API's
    {"X-Api-Token": API_TOKEN},
]
POST_URL = "http://localhost/twilio/conversations/post"
FORM = {
    "AccountSid": ACCOUNT_SID,
    "EventType": "onMessageAdded",
    "ConversationSid": CH,
    "MessageSid": "IM" + "1" * 32,
    "DateCreated": "2026-11-26T20:00:00Z",
}


def make_app(**overrides):
    connection = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    overrides.setdefault("ops_tokens", (OPS_TOKEN,))  # an open console: refusals must be earned
    return create_app(make_settings(**overrides), connection=connection), connection


def sign(url: str, params: dict | None = None, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params or {})


def queued(connection) -> int:
    return connection.llen("rq:queue:bindery") + connection.zcard("rq:scheduled:bindery")


def _routes() -> list:
    app, _ = make_app()
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            path = rule.rule.replace("<sid>", CH).replace("<job_id>", "job-1")
            for argument in rule.arguments - {"sid", "job_id"}:
                path = path.replace(f"<{argument}>", "x")
            found.append(pytest.param(rule.rule, method, path, id=f"{method} {rule.rule}"))
    return found


ROUTES = _routes()


def test_the_route_table_was_enumerated():
    rules = {param.values[0] for param in ROUTES}
    assert {"/api/v1/conversations/<sid>/participants", "/twilio/conversations/post"} <= rules


@pytest.mark.parametrize(("rule", "method", "path"), ROUTES)
def test_every_route_refuses_a_missing_or_wrong_token(rule, method, path):
    app, connection = make_app()
    client = app.test_client()
    body = {"identity": "agent-1", "state": "closed"}
    for headers in WRONG_TOKENS:
        response = client.open(path, method=method, json=body, headers=headers)
        if rule.startswith(SESSION):
            assert_needs_a_session(rule, method, response)
        elif rule.startswith(SIGNED):
            assert response.status_code == 403, (headers, response.status_code)
        elif rule in PUBLIC:
            assert response.status_code in (200, 503), (headers, response.status_code)
            assert API_TOKEN not in response.get_data(as_text=True)
            assert AUTH_TOKEN not in response.get_data(as_text=True)
        else:
            assert response.status_code == 401, (headers, response.status_code)
            assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert queued(connection) == 0


def assert_needs_a_session(rule: str, method: str, response) -> None:
    text = response.get_data(as_text=True)
    for secret in (API_TOKEN, AUTH_TOKEN, OPS_TOKEN):
        assert secret not in text
    if rule == "/ops/login":
        # The form answers; posting it without its CSRF token (and a right token) is refused.
        assert response.status_code == (200 if method == "GET" else 403), response.status_code
    elif rule in SESSION_PUBLIC:
        assert response.status_code in (200, 404), response.status_code
    elif rule in SESSION_JSON:
        assert response.status_code == 401 and response.json == {"error": "sign in first"}
    elif method == "GET":
        assert response.status_code == 303, (rule, response.status_code)
        assert response.headers["Location"].startswith("/ops/login?next=/ops/")
    else:
        assert response.status_code == 401, (rule, response.status_code)


CONSOLE_ROUTES = [p for p in ROUTES if p.values[0].startswith(SESSION)]
CONSOLE_ACTIONS = [p for p in CONSOLE_ROUTES if p.values[1] == "POST"]


def _session_cookie(app, **fields) -> str:
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    return serializer.dumps(fields)


def _signed_in(app):
    client = app.test_client()
    form = client.get("/ops/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post("/ops/login", data={"token": OPS_TOKEN, "csrf_token": csrf})
    assert response.status_code == 303
    page = client.get("/ops/lookup").get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _refusals(app) -> dict[str, tuple[dict, str]]:
    """Requests that must not open the console: each its headers and its session cookie."""
    other, _ = make_app(ops_tokens=("another-deployment-token-0",))
    now = time.time()
    operator = fingerprint(OPS_TOKEN)

    def cookie(value: str) -> tuple[dict, str]:
        return {}, value

    return {
        "no session": ({}, ""),
        "the ops token as a bearer token": ({"Authorization": f"Bearer {OPS_TOKEN}"}, ""),
        "the API token": ({"Authorization": f"Bearer {API_TOKEN}"}, ""),
        "the ops token as a cookie": cookie(OPS_TOKEN),
        "an unsigned cookie": cookie(base64.urlsafe_b64encode(b'{"operator":"x"}').decode()),
        "a session before sign-in": cookie(_session_cookie(app, csrf="c")),
        "an expired session": cookie(
            _session_cookie(app, operator=operator, signed_in_at=now - 9 * 3600, csrf="c")
        ),
        "a session of another deployment": cookie(
            _session_cookie(other, operator=operator, signed_in_at=now, csrf="c")
        ),
        "a session of an unknown operator": cookie(
            _session_cookie(app, operator="f" * 12, signed_in_at=now, csrf="c")
        ),
    }


def test_the_refused_sessions_differ_from_a_valid_one_only_where_they_say():
    app, _ = make_app()
    client = app.test_client()
    valid = _session_cookie(app, operator=fingerprint(OPS_TOKEN), signed_in_at=time.time())
    client.set_cookie("bindery_ops", valid, path="/ops")
    assert client.get("/ops/").status_code == 200


@pytest.mark.parametrize(("rule", "method", "path"), CONSOLE_ROUTES)
def test_every_console_route_needs_a_session(rule, method, path):
    app, connection = make_app()
    for name, (headers, cookie) in _refusals(app).items():
        client = app.test_client()
        if cookie:
            client.set_cookie("bindery_ops", cookie, path="/ops")
        response = client.open(path, method=method, data={"csrf_token": "c"}, headers=headers)
        if rule in SESSION_PUBLIC:
            assert response.status_code in (200, 401, 403, 404), (name, response.status_code)
            assert client.get("/ops/").status_code == 303, name  # and no session came of it
            continue
        assert response.status_code in (303, 401), (name, response.status_code)
        assert_needs_a_session(rule, method, response)
    assert queued(connection) == 0
    if rule in SESSION_PUBLIC:
        return
    # The same route opens with a session: the refusals above were the session's doing.
    client, csrf = _signed_in(app)
    response = client.open(path, method=method, data={"csrf_token": csrf})
    assert response.status_code not in (401, 403), response.status_code


@pytest.mark.parametrize(("rule", "method", "path"), CONSOLE_ACTIONS)
def test_every_console_action_needs_the_csrf_token(rule, method, path):
    app, connection = make_app()
    client, csrf = _signed_in(app)
    for data, headers in (
        ({}, {}),
        ({"csrf_token": ""}, {}),
        ({"csrf_token": csrf[:-1]}, {}),
        ({"csrf_token": csrf + "x"}, {}),
        ({}, {"X-CSRF-Token": "forged"}),
    ):
        response = client.open(path, method=method, data=data, headers=headers)
        assert response.status_code == 403, (data, headers, response.status_code)
        assert "CSRF" in response.get_data(as_text=True)
    assert queued(connection) == 0


@pytest.mark.parametrize("path", ["/twilio/conversations/post", "/twilio/conversations/pre"])
def test_the_api_token_does_not_open_the_webhooks(path):
    app, connection = make_app()
    response = app.test_client().post(
        path, data=FORM, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 403
    assert queued(connection) == 0


# -- the signature check ----------------------------------------------------------------------


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("mode", ["plain", "debug", "testing", "FLASK_DEBUG"])
def test_only_development_skips_the_signature_check(env, mode, monkeypatch):
    if mode == "FLASK_DEBUG":
        monkeypatch.setenv("FLASK_DEBUG", "1")
    app, connection = make_app(env=env)
    app.debug = mode == "debug"
    app.testing = mode == "testing"
    client = app.test_client()
    assert client.post(POST_URL, data=FORM).status_code == 403
    bad = {"X-Twilio-Signature": sign(POST_URL, FORM, token="not-the-token")}
    assert client.post(POST_URL, data=FORM, headers=bad).status_code == 403
    assert queued(connection) == 0
    good = {"X-Twilio-Signature": sign(POST_URL, FORM)}
    assert client.post(POST_URL, data=FORM, headers=good).status_code == 200


def test_development_does_skip_it():
    app, connection = make_app(env="development")
    assert app.test_client().post(POST_URL, data=FORM).status_code == 200
    assert queued(connection) == 1


@pytest.mark.parametrize(
    "value",
    ["dev", "Development", "DEVELOPMENT", "devel", "local", "debug", "", "development,test"],
)
def test_any_other_environment_name_is_refused_at_start(value):
    environ = {
        "BINDERY_ENV": value,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "BINDERY_API_TOKEN": API_TOKEN,
    }
    with pytest.raises(SettingsError):
        Settings.from_env(environ)


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "other-app.example.com",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Prefix": "/hook",
    "Forwarded": "proto=https;host=other-app.example.com",
}


def test_proxy_headers_are_not_trusted_without_public_base_url():
    """A signature Twilio made for another URL (another app's webhook on the same account) cannot
    be replayed here by claiming, in forwarded headers, that this is that URL."""
    app, connection = make_app()
    client = app.test_client()
    for url in (
        "https://other-app.example.com/twilio/conversations/post",
        "https://other-app.example.com/hook/twilio/conversations/post",
        "https://other-app.example.com:443/twilio/conversations/post",
    ):
        headers = {**FORWARDED, "X-Twilio-Signature": sign(url, FORM)}
        assert client.post(POST_URL, data=FORM, headers=headers).status_code == 403, url
    assert queued(connection) == 0
    headers = {**FORWARDED, "X-Twilio-Signature": sign(POST_URL, FORM)}
    assert client.post(POST_URL, data=FORM, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "base",
    [
        "https://bindery.example.com",
        "https://bindery.example.com/",
        "https://x.example.com/bindery",
    ],
)
def test_public_base_url_is_the_only_url_that_counts(base):
    app, connection = make_app(public_base_url=base)
    client = app.test_client()
    public = base.rstrip("/") + "/twilio/conversations/post"
    for url, expected in (
        (public, 200),
        (public + "?", 403),
        (POST_URL, 403),  # the internal URL the proxy forwarded to
        ("https://other-app.example.com/twilio/conversations/post", 403),
        (public.replace("https://", "http://"), 403),
    ):
        headers = {**FORWARDED, "X-Twilio-Signature": sign(url, FORM)}
        response = client.post(POST_URL, data=FORM, headers=headers)
        assert response.status_code == expected, (url, response.status_code)
    # The default port is the same URL (twilio's validator tries both forms).
    with_port = public.replace(".com", ".com:443", 1)
    response = client.post(
        POST_URL, data=FORM, headers={"X-Twilio-Signature": sign(with_port, FORM)}
    )
    assert response.status_code == 200
    # Query string and GET: signed as sent.
    query = urlencode(FORM)
    response = client.get(
        f"{POST_URL}?{query}", headers={"X-Twilio-Signature": sign(f"{public}?{query}")}
    )
    assert response.status_code == 200
    assert queued(connection) == 1  # the same event each time: enqueued once


def test_a_public_base_url_must_be_http():
    for bad in ("bindery.example.com", "ftp://bindery.example.com", "https://", "javascript:x"):
        with pytest.raises(SettingsError):
            Settings(public_base_url=bad).validate()


# -- after a storm: Redis and the logs ------------------------------------------------------


@pytest.mark.integration  # the fault storm runs real processes
def test_job_payloads_are_json_never_pickle(fault_storm):
    redis = fault_storm.stack.redis
    jobs = results = 0
    for key in redis.scan_iter(match="rq:job:*", count=1000):
        if redis.type(key) != b"hash" or not redis.hexists(key, "data"):
            continue
        data = zlib.decompress(redis.hget(key, "data"))
        assert not data.startswith(b"\x80"), key  # pickle's protocol marker
        function, _, args, kwargs = json.loads(data)
        assert function.startswith("workers.jobs.") and isinstance(kwargs, dict), key
        if redis.hexists(key, "meta"):
            json.loads(redis.hget(key, "meta"))
        jobs += 1
    for key in redis.scan_iter(match="rq:results:*", count=1000):
        for _, entry in redis.xrange(key):
            if b"return_value" in entry:
                json.loads(base64.b64decode(entry[b"return_value"]))
                results += 1
    assert jobs >= len(fault_storm.jobs) and results >= len(fault_storm.jobs), (jobs, results)


@pytest.mark.integration  # the fault storm runs real processes
def test_every_key_is_bindery_or_rq(fault_storm):
    keys = [k.decode() for k in fault_storm.stack.redis.scan_iter(count=1000)]
    stray = [k for k in keys if not k.startswith(("bindery:", "rq:"))]
    assert keys and not stray, stray[:10]
    assert any(k.startswith("bindery:pair:") for k in keys)


@pytest.mark.integration  # the fault storm runs real processes
def test_logs_hold_no_token_signature_or_full_number(fault_storm):
    from tests.reliability.harness import leaks

    logs = fault_storm.logs
    assert set(logs) >= {"web", "worker", "clock"}
    assert all(logs[name].strip() for name in ("web", "worker", "clock")), logs.keys()
    found = leaks(
        logs,
        {
            "secret": fault_storm.secrets.values(),
            "signature": fault_storm.signatures,
            "phone number": fault_storm.numbers,
        },
    )
    assert not found, "\n".join(found[:10])
    # The numbers did reach the logs, masked: the check above had something to find.
    assert "+1555*" in logs["web"] + logs["worker"]
    print(
        f"\nlogs: {sum(len(t.splitlines()) for t in logs.values())} lines from "
        f"{sorted(logs)}, {len(fault_storm.numbers)} numbers, {len(fault_storm.signatures)} "
        "signatures and 2 tokens searched, none found"
    )
