"""Health, readiness and metrics: what a load balancer and Prometheus see."""

import redis

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
