"""Limits, faults, stats and reset."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from emulator import EmulatorConfig, start_in_thread


def test_writes_per_conversation_are_limited(conversations, admin):
    admin.faults(writes_per_second_per_conversation=3)
    busy, quiet = conversations.conversations.create(), conversations.conversations.create()
    for number in range(3):
        busy.messages.create(author="a", body=str(number))
    with pytest.raises(TwilioRestException) as caught:
        busy.participants.create(identity="agent-7")
    assert (caught.value.code, caught.value.status) == (20429, 429)
    # Another conversation and reads are not limited.
    assert quiet.participants.create(identity="agent-7").sid
    assert len(busy.messages.list()) == 3
    time.sleep(1.05)  # the window slides
    assert busy.participants.create(identity="agent-7").sid
    assert admin.stats()["errors"]["20429"] == 1


def test_the_account_concurrency_is_limited(emulator, admin):
    admin.faults(max_concurrency=2, latency_ms=300)
    url = f"{emulator.url}/v1/Conversations"
    auth = (emulator.account_sid, emulator.auth_token)

    def call(_: int) -> int:
        return requests.get(url, auth=auth, timeout=10).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(call, range(6)))
    assert statuses.count(200) >= 2
    assert statuses.count(429) >= 1
    assert set(statuses) <= {200, 429}
    assert admin.stats()["errors"]["20429"] == statuses.count(429)


def test_limits_come_from_the_config_and_reset_restores_them():
    config = EmulatorConfig(writes_per_second_per_conversation=30, max_concurrency=100)
    with start_in_thread(config) as running:
        faults = requests.get(f"{running.url}/_emulator/faults", timeout=5).json()
        assert faults["writes_per_second_per_conversation"] == 30
        assert faults["max_concurrency"] == 100
        cleared = requests.post(
            f"{running.url}/_emulator/faults", json={"max_concurrency": None}, timeout=5
        ).json()
        assert cleared["max_concurrency"] is None
        assert cleared["writes_per_second_per_conversation"] == 30
        requests.post(f"{running.url}/_emulator/reset", timeout=5)
        faults = requests.get(f"{running.url}/_emulator/faults", timeout=5).json()
        assert faults["max_concurrency"] == 100


def test_injected_errors(conversations, admin):
    admin.faults(error_rate_429=1.0)
    with pytest.raises(TwilioRestException) as caught:
        conversations.conversations.create()
    assert (caught.value.code, caught.value.status) == (20429, 429)
    admin.faults(error_rate_500=1.0)
    with pytest.raises(TwilioRestException) as caught:
        conversations.conversations.create()
    assert (caught.value.code, caught.value.status) == (20500, 500)
    assert admin.stats()["errors"] == {"20429": 1, "20500": 1}
    admin.faults()  # {} clears them
    assert conversations.conversations.create().sid


def test_writes_only_errors_leave_reads_working(conversations, admin):
    conversation = conversations.conversations.create()
    answer = admin.faults(error_rate_500=1.0, writes_only=True)
    assert answer["writes_only"] is True and answer["error_rate_500"] == 1.0
    assert conversation.fetch().sid == conversation.sid
    with pytest.raises(TwilioRestException):
        conversation.update(friendly_name="x")


def test_faults_are_validated(admin):
    for bad in (
        {"error_rate_429": 2},
        {"latency_ms": -1},
        {"max_concurrency": 0},
        {"nonsense": 1},
        {"writes_only": "yes"},
    ):
        answer = admin.post("faults", bad)
        assert answer.status_code == 400, bad
        assert answer.json()["message"]


def test_latency_is_not_served_under_the_store_lock(conversations, admin, emulator):
    """While a slow call waits out its latency, the store is free for everyone else."""
    admin.faults(latency_ms=400)
    started = threading.Event()

    def slow_call() -> None:
        started.set()
        conversations.conversations.list()

    thread = threading.Thread(target=slow_call)
    thread.start()
    started.wait()
    time.sleep(0.1)  # the slow call is now sleeping out its latency
    store = emulator.engine.store
    assert store.lock.acquire(timeout=0.1), "the store lock is held during injected latency"
    store.lock.release()
    thread.join()


def test_latency_delays_rest_calls_only(emulator, admin):
    admin.faults(latency_ms=200)
    auth = (emulator.account_sid, emulator.auth_token)
    started = time.monotonic()
    requests.get(f"{emulator.url}/v1/Conversations", auth=auth, timeout=5)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    admin.stats()
    assert time.monotonic() - started < 0.2


def test_stats_count_requests_errors_and_calls(conversations, raw, emulator, admin):
    conversation = conversations.conversations.create()
    conversation.participants.create(identity="agent-7")
    for _ in range(2):
        with pytest.raises(TwilioRestException):
            conversation.participants.create(identity="agent-7")
    conversations.conversations.list()
    requests.get(f"{emulator.url}/v1/Conversations", auth=("AC" + "0" * 32, "wrong"), timeout=5)
    raw.get(f"{emulator.url}/v1/NoSuchThing")
    stats = admin.stats()
    assert stats["requests"] == 7
    assert stats["errors"] == {"20003": 1, "20404": 1, "50433": 2}
    assert stats["calls"] == {
        "conversations.create": 1,
        "conversations.list": 2,
        "participants.create": 3,
    }
    assert stats["webhooks"] == {"sent": 0, "failed": 0, "rejected": 0}
    assert stats["state"] == {"services": 1, "conversations": 1, "bindings": 0}


def test_reset_clears_state_stats_webhooks_and_faults(conversations, emulator, admin, receiver):
    default = emulator.default_service_sid
    conversations.services.create(friendly_name="extra")
    conversation = conversations.conversations.create(unique_name="ticket-1")
    conversation.participants.create(
        messaging_binding_address="+15551230001", messaging_binding_proxy_address="+15550001111"
    )
    conversations.services(default).configuration.webhooks().update(
        post_webhook_url=receiver.post_url, filters=["onConversationAdded"]
    )
    admin.faults(latency_ms=50)
    admin.advance(86400)

    answer = admin.post("reset").json()
    assert answer == {"reset": True, "default_service_sid": default}
    assert [s.sid for s in conversations.services.list()] == [default]
    assert conversations.conversations.list() == []
    webhooks = conversations.services(default).configuration.webhooks().fetch()
    assert (webhooks.post_webhook_url, webhooks.filters) == (None, [])
    assert admin.get("faults")["latency_ms"] == 0
    stats = admin.stats()
    assert stats["errors"] == {}
    assert stats["calls"] == {
        "conversations.list": 1,
        "services.list": 1,
        "webhook_configuration.fetch": 1,
    }
    # The pair and the unique name are free again, and the clock is back to now.
    again = conversations.conversations.create(unique_name="ticket-1")
    assert again.participants.create(
        messaging_binding_address="+15551230001", messaging_binding_proxy_address="+15550001111"
    ).sid
    assert abs(again.date_created.timestamp() - time.time()) < 60


def test_wrong_or_missing_credentials_get_20003(emulator):
    url = f"{emulator.url}/v1/Conversations"
    for auth in (None, (emulator.account_sid, "wrong"), ("AC" + "1" * 32, emulator.auth_token)):
        answer = requests.get(url, auth=auth, timeout=5)
        assert answer.status_code == 401
        assert answer.json() == {
            "code": 20003,
            "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003",
            "status": 401,
        }


def test_the_sdk_raises_on_wrong_credentials(emulator):
    from workers.twilio_http import make_client

    client = make_client(emulator.account_sid, "wrong", base_url=emulator.url)
    try:
        with pytest.raises(TwilioRestException) as caught:
            client.conversations.v1.conversations.create()
        assert (caught.value.code, caught.value.status) == (20003, 401)
    finally:
        client.http_client.session.close()
