import pytest

from workers.settings import Settings, SettingsError, parse_duration


def test_defaults_are_safe():
    settings = Settings.from_env({})
    assert settings.env == "production"
    assert settings.signatures_required
    assert settings.conflict_policy == "close-stale"
    assert settings.stale_after == 6 * 3600
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_reads_every_variable():
    settings = Settings.from_env(
        {
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "TWILIO_AUTH_TOKEN": "tok",
            "BINDERY_API_TOKEN": "api",
            "BINDERY_ENV": "development",
            "BINDERY_AUTO_ADD_IDENTITIES": "agent-1, agent-2,,",
            "BINDERY_CLOSE_INACTIVE_AFTER": "15m",
            "BINDERY_STALE_AFTER": "2d",
            "BINDERY_CONFLICT_POLICY": "move",
            "BINDERY_MAX_RETRIES": "3",
            "PUBLIC_BASE_URL": "https://bindery.example.com",
        }
    )
    assert settings.auto_add_identities == ("agent-1", "agent-2")
    assert settings.close_inactive_after == 900
    assert settings.stale_after == 2 * 86400
    assert settings.conflict_policy == "move"
    assert settings.max_retries == 3
    assert settings.development and not settings.signatures_required


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BINDERY_ENV": "prod"}, "BINDERY_ENV"),
        ({"BINDERY_ENV": "test"}, "BINDERY_ENV"),  # production or development, nothing else
        ({"BINDERY_CONFLICT_POLICY": "yolo"}, "BINDERY_CONFLICT_POLICY"),
        ({"BINDERY_STALE_AFTER": "soon"}, "BINDERY_STALE_AFTER"),
        ({"BINDERY_MAX_RETRIES": "many"}, "BINDERY_MAX_RETRIES"),
        ({"TWILIO_API_BASE_URL": "localhost:8090"}, "TWILIO_API_BASE_URL"),
        ({"BINDERY_LOCK_TTL": "0.5"}, "BINDERY_LOCK_TTL"),
    ],
)
def test_malformed_values_name_the_variable(env, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_require_names_what_is_missing():
    settings = Settings.from_env({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32})
    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN, BINDERY_API_TOKEN"):
        settings.require("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "BINDERY_API_TOKEN")


def test_secrets_never_printed():
    settings = Settings.from_env({"TWILIO_AUTH_TOKEN": "s3cret", "BINDERY_API_TOKEN": "t0ken"})
    shown = repr(settings) + str(settings.public_items())
    assert "s3cret" not in shown and "t0ken" not in shown
    assert ("TWILIO_AUTH_TOKEN", "(set)") in settings.public_items()


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("6h", 21600)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_out_of_session_modes():
    assert Settings.from_env({}).out_of_session == "reject"
    reopen = Settings.from_env({"BINDERY_OUT_OF_SESSION": "reopen"})
    assert reopen.out_of_session == "reopen"
    callback = Settings.from_env(
        {
            "BINDERY_OUT_OF_SESSION": "callback",
            "BINDERY_OUT_OF_SESSION_URL": "https://app.example.com/oos",
        }
    )
    assert callback.out_of_session_url == "https://app.example.com/oos"
    with pytest.raises(SettingsError, match="BINDERY_OUT_OF_SESSION: 'maybe'"):
        Settings.from_env({"BINDERY_OUT_OF_SESSION": "maybe"})
    with pytest.raises(SettingsError, match="BINDERY_OUT_OF_SESSION_URL is required"):
        Settings.from_env({"BINDERY_OUT_OF_SESSION": "callback"})
    with pytest.raises(SettingsError, match="BINDERY_OUT_OF_SESSION_URL"):
        Settings.from_env(
            {"BINDERY_OUT_OF_SESSION": "callback", "BINDERY_OUT_OF_SESSION_URL": "app/oos"}
        )
