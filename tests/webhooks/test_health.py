"""Health, readiness and metrics: what a load balancer and Prometheus see."""

import pytest
import redis

from devstack.processes import PrivateRedis
from tests.conftest import API_TOKEN, AUTH_TOKEN, make_settings
from tests.webhooks.signing import sign
from webhooks import create_app


def test_healthz_answers_without_redis():
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    client = create_app(make_settings(), connection=unreachable).test_client()
    assert client.get("/healthz").status_code == 200


def test_readyz_needs_redis():
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    response = create_app(make_settings(), connection=unreachable).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["problems"] == ["redis: ConnectionError"]


def test_readyz_needs_a_worker_heartbeat(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "heartbeat" in response.json["problems"][0]


def test_metrics_count_webhooks_and_signature_failures(client):
    url = "http://localhost/twilio/conversations/post"
    form = {
        "AccountSid": "AC" + "ab" * 16,
        "EventType": "onMessageAdded",
        "ConversationSid": "CH" + "c" * 32,
    }
    client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form, AUTH_TOKEN)})
    client.post(url, data=form, headers={"X-Twilio-Signature": "forged"})
    assert client.get("/metrics").status_code == 401
    token = {"Authorization": f"Bearer {API_TOKEN}"}
    text = client.get("/metrics", headers=token).get_data(as_text=True)
    assert 'bindery_webhooks_total{event="onMessageAdded",status="200"}' in text
    assert "bindery_signature_failures_total" in text
    assert 'bindery_queue_depth{state="queued"} 1.0' in text
    assert "bindery_enqueue_seconds_bucket" in text


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_readyz_fails_when_redis_would_evict_keys(policy):
    """An evicted job or lock is a lost operation: a real redis-server that may evict is not
    ready, and the answer names the setting to change."""
    server = PrivateRedis("--maxmemory", "64mb", "--maxmemory-policy", policy)
    try:
        connection = redis.Redis.from_url(server.url)
        response = create_app(make_settings(), connection=connection).test_client().get("/readyz")
        assert response.status_code == 503
        assert any(
            f"maxmemory-policy is {policy}" in p and "noeviction" in p
            for p in response.json["problems"]
        ), response.json
        connection.config_set("maxmemory-policy", "noeviction")
        again = create_app(make_settings(), connection=connection).test_client().get("/readyz")
        assert not any("maxmemory-policy" in p for p in again.json["problems"]), again.json
    finally:
        server.stop()
