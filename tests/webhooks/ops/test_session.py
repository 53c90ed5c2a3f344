"""Sign-in, the session every page needs, CSRF on every action, sign-out."""

from __future__ import annotations

import time

import pytest
from flask import request
from flask.sessions import SecureCookieSessionInterface

from tests.conftest import API_TOKEN, make_settings
from tests.webhooks.ops.conftest import CH, OPS_TOKEN, csrf_of, fail, sign_in
from webhooks import create_app
from workers.settings import Settings, SettingsError


def test_a_page_without_a_session_sends_to_the_sign_in_form(app):
    response = app.test_client().get("/ops/failed?code=20500")
    assert response.status_code == 303
    assert response.headers["Location"] == "/ops/login?next=/ops/failed?code%3D20500"


def test_the_progress_feed_without_a_session_is_a_json_401(app):
    response = app.test_client().get("/ops/replays/0123456789abcdef/progress")
    assert response.status_code == 401 and response.json == {"error": "sign in first"}


def test_an_action_without_a_session_is_refused_and_does_nothing(app, rt, work, fake_redis):
    job_id = fail(rt)
    work()
    client = app.test_client()
    page = client.get("/ops/login").get_data(as_text=True)  # a CSRF token, but no operator
    response = client.post(
        "/ops/failed/replay", data={"job_id": job_id, "csrf_token": csrf_of(page)}
    )
    assert response.status_code == 401
    assert job_id in rt.queue.rq.failed_job_registry
    assert fake_redis.llen("rq:queue:bindery") == 0


def test_signing_in_opens_the_console_and_goes_where_it_was_asked(app):
    client = app.test_client()
    response = sign_in(client, next_="/ops/conflicts")
    assert response.status_code == 303 and response.headers["Location"] == "/ops/conflicts"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("bindery_ops=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ops" in cookie
    assert "Secure" not in cookie  # PUBLIC_BASE_URL is not https here
    assert OPS_TOKEN not in cookie
    page = client.get("/ops/")
    assert page.status_code == 200 and b"Overview" in page.data
    assert OPS_TOKEN.encode() not in page.data


def test_behind_https_the_cookie_is_secure(fake_redis):
    settings = make_settings(ops_tokens=(OPS_TOKEN,), public_base_url="https://bindery.example.com")
    client = create_app(settings, connection=fake_redis).test_client()
    assert "Secure" in sign_in(client).headers["Set-Cookie"]


@pytest.mark.parametrize(
    "token", ["", "wrong-token-0123456789", OPS_TOKEN[:-1], OPS_TOKEN + "x", API_TOKEN]
)
def test_a_wrong_token_is_refused(app, token, caplog):
    client = app.test_client()
    response = sign_in(client, token=token)
    assert response.status_code == 401
    assert b"not an operator token" in response.data
    assert client.get("/ops/").status_code == 303
    assert "sign-in refused" in caplog.text
    assert OPS_TOKEN not in caplog.text and (not token or token not in caplog.text)


def test_either_configured_token_signs_in(app):
    from tests.webhooks.ops.conftest import OTHER_OPS_TOKEN

    assert sign_in(app.test_client(), token=OTHER_OPS_TOKEN).status_code == 303


def test_the_sign_in_form_needs_its_csrf_token(app):
    client = app.test_client()
    client.get("/ops/login")
    response = client.post("/ops/login", data={"token": OPS_TOKEN})
    assert response.status_code == 403
    assert client.get("/ops/").status_code == 303


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_an_action_without_the_right_csrf_token_is_refused(operator, rt, work, csrf):
    job_id = fail(rt)
    work()
    data = {"job_id": job_id}
    if csrf is not None:
        data["csrf_token"] = csrf
    response = operator.post("/ops/failed/replay", data=data)
    assert response.status_code == 403 and b"CSRF" in response.data
    assert job_id in rt.queue.rq.failed_job_registry
    assert (
        operator.post("/ops/failed/replay", data={**data, "csrf_token": operator.csrf}).status_code
        == 303
    )
    assert job_id not in rt.queue.rq.failed_job_registry


def test_the_csrf_token_may_come_in_a_header(operator):
    response = operator.post("/ops/logout", headers={"X-CSRF-Token": operator.csrf})
    assert response.status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example.com/ops/",
        "https://evil.example.com/ops/",
        "/api/v1/jobs",
        "/ops\\..\\api",
        "javascript:alert(1)",
    ],
)
def test_sign_in_never_sends_elsewhere(app, target):
    response = sign_in(app.test_client(), next_=target)
    assert response.headers["Location"] == "/ops/"


def test_sign_out_ends_the_session(operator):
    response = operator.post("/ops/logout", data={"csrf_token": operator.csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/ops/login?signed_out=1"
    assert operator.get("/ops/").status_code == 303
    assert b"Signed out" in operator.get("/ops/login?signed_out=1").data


def test_a_session_ends_after_its_hours(operator):
    with operator.session_transaction() as session:
        session["signed_in_at"] = time.time() - 8 * 3600 - 1
    assert operator.get("/ops/").status_code == 303


def test_changing_the_tokens_signs_everyone_out(operator, fake_redis):
    other = create_app(make_settings(ops_tokens=("a-brand-new-token-0000",)), connection=fake_redis)
    client = other.test_client()
    client.set_cookie(
        "bindery_ops", operator.get_cookie("bindery_ops", path="/ops").value, path="/ops"
    )
    assert client.get("/ops/").status_code == 303


def test_a_cookie_signed_with_another_key_is_refused(app):
    class Forger(SecureCookieSessionInterface):
        pass

    forger_app = create_app(make_settings(ops_tokens=("another-deployment-token",)))
    serializer = Forger().get_signing_serializer(forger_app)
    forged = serializer.dumps({"operator": "x" * 12, "signed_in_at": time.time(), "csrf": "c"})
    client = app.test_client()
    client.set_cookie("bindery_ops", forged, path="/ops")
    assert client.get("/ops/").status_code == 303


def test_a_closed_console_lets_nobody_in(fake_redis):
    client = create_app(make_settings(), connection=fake_redis).test_client()
    assert b"console is closed" in client.get("/ops/login").data
    assert sign_in(client, token="").status_code == 401


def test_pages_carry_security_headers(operator):
    headers = operator.get("/ops/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


def test_the_sign_in_page_and_its_files_answer_without_a_session(app):
    client = app.test_client()
    assert client.get("/ops/login").status_code == 200
    for name in ("ops.css", "ops.js"):
        with client.get(f"/ops/static/{name}") as response:
            assert response.status_code == 200


def test_operator_tokens_are_secret_and_long():
    settings = Settings.from_env({"BINDERY_OPS_TOKENS": f"{OPS_TOKEN}, another-token-abcdefgh"})
    assert settings.ops_tokens == (OPS_TOKEN, "another-token-abcdefgh")
    assert ("BINDERY_OPS_TOKENS", "(set)") in settings.public_items()
    assert OPS_TOKEN not in repr(settings)
    with pytest.raises(SettingsError, match="BINDERY_OPS_TOKENS"):
        Settings.from_env({"BINDERY_OPS_TOKENS": "short"})


def test_the_conversation_filter_needs_a_session_too(app):
    assert app.test_client().get(f"/ops/conversations/{CH}").status_code == 303


def test_a_webhook_or_an_api_request_opens_no_session(app):
    """The console's cookie never comes with them; the console's pages still get their session."""
    interface = app.session_interface
    for path, opened in (("/twilio/conversations/post", False), ("/api/v1/jobs", False)):
        with app.test_request_context(path, headers={"Cookie": "bindery_ops=x"}):
            assert (interface.open_session(app, request) is not None) is opened
    with app.test_request_context("/ops/"):
        assert interface.open_session(app, request) is not None
