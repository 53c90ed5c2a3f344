"""The signature check fails closed: only a request Twilio signed for this URL gets through."""

import json

from tests.conftest import AUTH_TOKEN, make_settings
from tests.webhooks.signing import json_url, sign
from webhooks import create_app

URL = "http://localhost/twilio/conversations/post"
CH = "CH" + "c" * 32
FORM = {
    "AccountSid": "AC" + "ab" * 16,
    "EventType": "onMessageAdded",
    "ConversationSid": CH,
    "MessageSid": "IM" + "1" * 32,
    "DateCreated": "2026-11-26T20:00:00Z",
    "Body": "hello",
}


def queued(fake_redis) -> int:
    return fake_redis.llen("rq:queue:bindery")


def test_valid_signature_is_accepted(client, fake_redis):
    response = client.post(
        URL, data=FORM, headers={"X-Twilio-Signature": sign(URL, FORM, AUTH_TOKEN)}
    )
    assert response.status_code == 200, response.json
    assert queued(fake_redis) == 1


def test_missing_signature_is_refused(client, fake_redis):
    response = client.post(URL, data=FORM)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json["error"]
    assert queued(fake_redis) == 0


def test_wrong_token_is_refused(client, fake_redis):
    response = client.post(URL, data=FORM, headers={"X-Twilio-Signature": sign(URL, FORM, "nope")})
    assert response.status_code == 403
    assert queued(fake_redis) == 0


def test_signed_for_another_url_is_refused(client, fake_redis):
    other = "http://localhost/twilio/conversations/pre"
    response = client.post(
        URL, data=FORM, headers={"X-Twilio-Signature": sign(other, FORM, AUTH_TOKEN)}
    )
    assert response.status_code == 403
    assert queued(fake_redis) == 0


def test_tampered_parameter_is_refused(client, fake_redis):
    signature = sign(URL, FORM, AUTH_TOKEN)
    response = client.post(
        URL, data={**FORM, "Body": "changed"}, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    assert queued(fake_redis) == 0


def test_behind_a_proxy_the_public_url_is_what_counts(fake_redis):
    public = "https://bindery.example.com"
    app = create_app(make_settings(public_base_url=public), connection=fake_redis)
    client = app.test_client()
    signed_public = sign(public + "/twilio/conversations/post", FORM, AUTH_TOKEN)
    assert (
        client.post(URL, data=FORM, headers={"X-Twilio-Signature": signed_public}).status_code
        == 200
    )
    # Signed for the internal URL the proxy forwarded to: not what Twilio signs, refused.
    signed_internal = sign(URL, FORM, AUTH_TOKEN)
    assert (
        client.post(URL, data=FORM, headers={"X-Twilio-Signature": signed_internal}).status_code
        == 403
    )
    assert queued(fake_redis) == 1


def test_json_body_with_body_sha256(client, fake_redis):
    body = json.dumps(FORM).encode()
    url = json_url(URL, body)
    signature = sign(url, None, AUTH_TOKEN)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    response = client.post(url, data=body, headers=headers)
    assert response.status_code == 200, response.json
    assert queued(fake_redis) == 1
    tampered = client.post(url, data=body.replace(b"hello", b"HELLO"), headers=headers)
    assert tampered.status_code == 403
    assert queued(fake_redis) == 1


def test_json_body_must_be_an_object(client, fake_redis):
    body = b"[1, 2]"
    url = json_url(URL, body)
    headers = {
        "X-Twilio-Signature": sign(url, None, AUTH_TOKEN),
        "Content-Type": "application/json",
    }
    response = client.post(url, data=body, headers=headers)
    assert response.status_code == 400 and response.json["field"] == "body"
    assert queued(fake_redis) == 0


def test_get_method_is_signed_over_the_query_string(client, fake_redis):
    from urllib.parse import urlencode

    url = URL + "?" + urlencode(FORM)
    response = client.get(url, headers={"X-Twilio-Signature": sign(url, None, AUTH_TOKEN)})
    assert response.status_code == 200
    assert queued(fake_redis) == 1


def test_development_mode_skips_the_check_with_a_warning(fake_redis, caplog):
    app = create_app(make_settings(env="development"), connection=fake_redis)
    response = app.test_client().post(URL, data=FORM)
    assert response.status_code == 200
    assert "signature check skipped" in caplog.text


def test_no_other_setting_turns_the_check_off(fake_redis):
    for env in ("production", "test"):
        app = create_app(make_settings(env=env), connection=fake_redis)
        app.debug = True
        assert app.test_client().post(URL, data=FORM).status_code == 403
