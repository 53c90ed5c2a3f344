"""The app factory: nothing built at import, each app its own state, config honoured."""

from __future__ import annotations

import base64

from emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, EmulatorConfig, create_app


def basic(sid: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


def test_default_config():
    app = create_app()
    engine = app.extensions["emulator"]
    assert engine.config.account_sid == DEFAULT_ACCOUNT_SID
    assert engine.config.auth_token == DEFAULT_AUTH_TOKEN
    answer = app.test_client().get(
        "/v1/Services", headers=basic(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    )
    assert answer.status_code == 200
    assert [s["sid"] for s in answer.json["services"]] == [engine.config.service_sid]


def test_test_config_and_separate_state():
    sid, token = "AC" + "cd" * 16, "another-token"
    first = create_app(EmulatorConfig(account_sid=sid, auth_token=token))
    second = create_app(EmulatorConfig(account_sid=sid, auth_token=token))
    headers = basic(sid, token)
    created = first.test_client().post("/v1/Conversations", headers=headers)
    assert created.status_code == 201 and created.json["account_sid"] == sid
    assert (
        second.test_client().get("/v1/Conversations", headers=headers).json["conversations"] == []
    )
    # The default credentials are refused by an app configured with others.
    refused = first.test_client().get(
        "/v1/Conversations", headers=basic(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    )
    assert refused.status_code == 401


def test_the_repr_of_a_config_hides_the_token():
    assert "another-token" not in repr(EmulatorConfig(auth_token="another-token"))
