"""The console's fixtures: an app with operator tokens on a fake Redis, a client that signed in
through the sign-in form, and RQ's registries filled by a real burst worker (`tests/workers/failing.py`)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_settings
from tests.workers.failing import enqueue_failure, run_jobs
from webhooks import create_app
from workers.runtime import Runtime

OPS_TOKEN = "operator-token-0123456789"
OTHER_OPS_TOKEN = "second-operator-token-abcdef"
CH = "CH" + "a" * 32
OTHER = "CH" + "b" * 32
CUSTOMER, PROXY = "+15551230001", "+15550001111"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    return CSRF.search(page).group(1)


def sign_in(client, token: str = OPS_TOKEN, next_: str = ""):
    page = client.get("/ops/login").get_data(as_text=True)
    return client.post(
        "/ops/login", data={"token": token, "csrf_token": csrf_of(page), "next": next_}
    )


@pytest.fixture
def settings():
    return make_settings(ops_tokens=(OPS_TOKEN, OTHER_OPS_TOKEN))


@pytest.fixture
def app(settings, fake_redis):
    return create_app(settings, connection=fake_redis)


@pytest.fixture
def rt(settings, fake_redis):
    return Runtime.build(settings, fake_redis, calls_twilio=False)


@pytest.fixture
def operator(app):
    """A client signed in through the form, and the CSRF token its pages carry."""
    client = app.test_client()
    assert sign_in(client).status_code == 303
    client.csrf = csrf_of(client.get("/ops/lookup").get_data(as_text=True))
    return client


@pytest.fixture
def work(rt):
    """Run every queued job with a real RQ worker (burst), in this process."""
    return lambda: run_jobs(rt)


def fail(rt, conversation=CH, code=20500, kind="participant-add", address=CUSTOMER) -> str:
    """Enqueue a job that fails as a Twilio error fails a Bindery job (run it with `work`)."""
    return enqueue_failure(rt, conversation, code, kind, address)
