"""The app's API: bearer token compared in constant time, inputs refused by name, jobs enqueued."""

import pytest
from rq import Queue
from rq.serializers import JSONSerializer

from tests.conftest import API_TOKEN, make_settings
from webhooks import create_app

CH = "CH" + "c" * 32
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def jobs(connection):
    queue = Queue("bindery", connection=connection, serializer=JSONSerializer)
    return [queue.fetch_job(job_id) for job_id in queue.job_ids]


def add(client, body, headers=AUTH, sid=CH):
    return client.post(f"/api/v1/conversations/{sid}/participants", json=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": API_TOKEN},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": "Bearer "},
    ],
)
def test_every_route_refuses_a_missing_or_wrong_token(client, fake_redis, headers):
    routes = [
        ("post", f"/api/v1/conversations/{CH}/participants", {"identity": "a"}),
        ("post", f"/api/v1/conversations/{CH}/state", {"state": "closed"}),
        ("get", "/api/v1/jobs/abc", None),
    ]
    for method, path, body in routes:
        response = getattr(client, method)(path, json=body, headers=headers)
        assert response.status_code == 401, path
        assert "token" in response.json["error"]
    assert jobs(fake_redis) == []


def test_api_is_closed_when_no_token_is_configured(fake_redis):
    app = create_app(make_settings(env="development", api_token=""), connection=fake_redis)
    response = add(app.test_client(), {"identity": "agent-1"}, headers={"Authorization": "Bearer "})
    assert response.status_code == 401


def test_add_identity(client, fake_redis):
    response = add(client, {"identity": "agent-7"})
    assert response.status_code == 202
    [job] = jobs(fake_redis)
    assert job.id == response.json["job_id"]
    assert job.func_name == "workers.jobs.participant_add"
    assert job.kwargs == {
        "conversation_sid": CH,
        "address": "",
        "proxy_address": "",
        "identity": "agent-7",
        "policy": "",
    }


def test_add_pair_with_idempotency_key_is_enqueued_once(client, fake_redis):
    body = {
        "address": "+15551230001",
        "proxy_address": "+15550001111",
        "policy": "move",
        "idempotency_key": "click-1",
    }
    first = add(client, body)
    second = add(client, body)
    assert first.status_code == second.status_code == 202
    assert first.json["job_id"] == second.json["job_id"] and second.json["duplicate"]
    assert len(jobs(fake_redis)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "address"),
        ({"address": "+1 555 123 0001", "proxy_address": "+15550001111"}, "address"),
        ({"address": "+15551230001", "proxy_address": "+1" + "5" * 300}, "proxy_address"),
        ({"address": "+15551230001\n"}, "address"),
        ({"address": "5551230001", "proxy_address": "+15550001111"}, "address"),
        ({"address": "+15551230001", "proxy_address": "+15551230001"}, "proxy_address"),
        ({"address": "+15551230001", "projected_address": "+15550001111"}, "projected_address"),
        ({"address": "whatsapp:+15551230001", "proxy_address": "+15550001111"}, "proxy_address"),
        ({"identity": "a", "address": "+15551230001"}, "identity"),
        ({"identity": 7}, "identity"),
        ({"identity": "x" * 257}, "identity"),
        ({"identity": "a", "policy": "destroy"}, "policy"),
        ({"identity": "a", "colour": "red"}, "colour"),
        ([1, 2], "body"),
    ],
)
def test_bad_input_is_refused_by_name(client, fake_redis, body, field):
    add(client, {"identity": "accepted-before"})
    response = add(client, body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert len(jobs(fake_redis)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"address": "messenger:4839203948202", "proxy_address": "messenger:108234920394"},
        {"address": "+6834123", "proxy_address": "+15550001111"},  # Niue
        {"address": "+15551230001"},  # group MMS: an SMS participant has no proxy address
        {"identity": "agent-7", "projected_address": "+15550001111"},  # group MMS, chat side
    ],
)
def test_every_address_form_twilio_takes_is_accepted(client, fake_redis, body):
    response = add(client, body)
    assert response.status_code == 202, response.json
    [job] = jobs(fake_redis)
    assert {k: v for k, v in job.kwargs.items() if v} == {"conversation_sid": CH, **body}


def test_non_json_body_is_refused(client, fake_redis):
    response = client.post(
        f"/api/v1/conversations/{CH}/participants", data="identity=a", headers=AUTH
    )
    assert response.status_code == 400 and response.json["field"] == "body"


def test_invalid_conversation_sid(client, fake_redis):
    response = add(client, {"identity": "a"}, sid="CH123")
    assert response.status_code == 400 and response.json["field"] == "conversation_sid"


def test_state_change(client, fake_redis):
    response = client.post(
        f"/api/v1/conversations/{CH}/state",
        headers=AUTH,
        json={"state": "inactive", "at": "2026-11-26T20:00:00Z"},
    )
    assert response.status_code == 202
    [job] = jobs(fake_redis)
    assert job.kwargs == {
        "conversation_sid": CH,
        "state": "inactive",
        "at": 1795723200.0,
        "reason": "api",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "state"),
        ({"state": "open"}, "state"),
        ({"state": "closed", "at": "noon"}, "at"),
        ({"state": "closed", "at": "2026-11-26T20:00:00"}, "at"),
    ],
)
def test_state_change_bad_input(client, fake_redis, body, field):
    response = client.post(f"/api/v1/conversations/{CH}/state", headers=AUTH, json=body)
    assert response.status_code == 400 and response.json["field"] == field
    assert jobs(fake_redis) == []


def test_job_status(client, fake_redis):
    job_id = add(client, {"identity": "agent-7"}).json["job_id"]
    response = client.get(f"/api/v1/jobs/{job_id}", headers=AUTH)
    assert response.status_code == 200
    assert response.json["status"] == "queued"
    assert response.json["kind"] == "participant-add"
    assert client.get("/api/v1/jobs/missing", headers=AUTH).status_code == 404
    assert client.get("/api/v1/jobs/bad%20id", headers=AUTH).status_code == 400
