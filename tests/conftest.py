"""Fixtures shared by every test: settings, a fake Redis for unit tests, the Flask app and client.

Integration fixtures (real Redis, the emulator, gunicorn and rq workers as processes) live in
`tests/integration/conftest.py`.
"""

from __future__ import annotations

import fakeredis
import pytest

from webhooks import create_app
from workers.settings import Settings

ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
API_TOKEN = "test-api-token"


def make_settings(**overrides) -> Settings:
    values = dict(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        api_token=API_TOKEN,
        redis_url="redis://127.0.0.1:6379/9",
        public_base_url="",
        env="production",
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def fake_redis():
    server = fakeredis.FakeServer()
    connection = fakeredis.FakeRedis(server=server)
    yield connection
    connection.close()


@pytest.fixture
def app(settings, fake_redis):
    return create_app(settings, connection=fake_redis)


@pytest.fixture
def client(app):
    return app.test_client()
