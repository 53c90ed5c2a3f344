"""The pools and sessions API: the bearer token, answers and their shapes, bad input named by its
field, and a number in use refused (409 with the count)."""

from __future__ import annotations

import pytest

from tests.conftest import API_TOKEN
from workers import allocation, job_catalog, pools, sessions

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
P1, P2 = "+15550001111", "+15550002222"
C1 = "+15551230001"


def put_pool(client, name="default", numbers=(P1, P2)):
    return client.put(
        f"/api/v1/pools/{name}",
        json={"numbers": [{"number": n} for n in numbers]},
        headers=AUTH,
    )


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/pools"),
        ("PUT", "/api/v1/pools/default"),
        ("GET", "/api/v1/pools/default"),
        ("POST", "/api/v1/pools/default/numbers"),
        ("DELETE", f"/api/v1/pools/default/numbers/{P1}"),
        ("POST", "/api/v1/sessions"),
        ("GET", "/api/v1/sessions/BS" + "0" * 32),
        ("DELETE", "/api/v1/sessions/BS" + "0" * 32),
    ],
)
def test_every_route_wants_the_token(client, method, path):
    assert client.open(path, method=method, json={}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.open(path, method=method, json={}, headers=wrong).status_code == 401


def test_a_pool_is_put_listed_shown_added_to_and_removed_from(client):
    answer = put_pool(client)
    assert answer.status_code == 201
    assert answer.json["numbers"][0] == {
        "number": P1,
        "country": "US",
        "area_code": "555",
        "sessions": 0,
    }
    assert put_pool(client).status_code == 200  # replaced
    added = client.post(
        "/api/v1/pools/default/numbers",
        json={"number": "whatsapp:+15550003333", "country": "GB", "area_code": "20"},
        headers=AUTH,
    )
    assert added.status_code == 201 and added.json["number"]["country"] == "GB"
    assert client.get("/api/v1/pools", headers=AUTH).json == {
        "pools": [{"pool": "default", "numbers": 3}]
    }
    removed = client.delete(f"/api/v1/pools/default/numbers/{P2}", headers=AUTH)
    assert removed.status_code == 200 and removed.json == {"pool": "default", "removed": P2}
    assert client.delete(f"/api/v1/pools/default/numbers/{P2}", headers=AUTH).status_code == 404
    shown = client.get("/api/v1/pools/default", headers=AUTH).json
    assert [n["number"] for n in shown["numbers"]] == [P1, "whatsapp:+15550003333"]
    assert client.get("/api/v1/pools/nope", headers=AUTH).status_code == 404


def test_a_number_in_another_pool_is_refused(client):
    put_pool(client)
    answer = put_pool(client, "other", (P1,))
    assert answer.status_code == 409 and "in pool default" in answer.json["error"]


def test_removing_a_number_open_sessions_use_is_refused_with_their_count(client, app):
    put_pool(client, numbers=(P1,))
    rt = app.extensions["bindery"].runtime
    allocation.reserve_fixed(rt, "BS" + "1" * 32, "default", C1, P1)
    allocation.reserve_fixed(rt, "BS" + "2" * 32, "default", "+15551230002", P1)
    answer = client.delete(f"/api/v1/pools/default/numbers/{P1}", headers=AUTH)
    assert answer.status_code == 409
    assert answer.json["sessions"] == 2 and "2 open session(s)" in answer.json["error"]
    assert client.get("/api/v1/pools/default", headers=AUTH).json["numbers"][0]["sessions"] == 2
    assert put_pool(client, numbers=(P2,)).status_code == 409  # a replacement dropping it too


@pytest.mark.parametrize(
    "body, field",
    [
        ({"numbers": "x"}, "numbers"),
        ({"numbers": [{"number": "5550001111"}]}, "numbers[0].number"),
        ({"numbers": [{"number": "messenger:123"}]}, "numbers[0].number"),
        ({"numbers": [{"number": P1, "country": "usa"}]}, "country"),
        ({"numbers": [{"number": P1}, {"number": P1}]}, "numbers[1].number"),
        ({"numbers": [], "extra": 1}, "extra"),
    ],
)
def test_bad_pools_are_refused_naming_the_field(client, body, field):
    answer = client.put("/api/v1/pools/default", json=body, headers=AUTH)
    assert answer.status_code == 400 and answer.json["field"] == field, answer.json


def test_a_bad_pool_name_is_refused(client):
    answer = client.get("/api/v1/pools/no%20spaces", headers=AUTH)
    assert answer.status_code == 400 and answer.json["field"] == "pool"


def test_a_session_is_created_read_and_closed(client, app):
    put_pool(client)
    body = {
        "pool": "default",
        "participants": [{"address": C1}, {"address": "whatsapp:+15551230002"}, {"identity": "a"}],
        "ttl": "2h",
        "unique_name": "trip-42",
    }
    answer = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert answer.status_code == 202
    session_id = answer.json["session_id"]
    assert answer.json["job_id"] == job_catalog.session_open_job_id(session_id)
    assert answer.json["duplicate"] is False
    again = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert again.json == {**answer.json, "duplicate": True}
    shown = client.get(f"/api/v1/sessions/{session_id}", headers=AUTH).json
    assert shown["status"] == "pending" and shown["conversation_sid"] is None
    assert shown["participants"][0] == {
        "address": C1,
        "proxy_address": None,
        "participant_sid": None,
    }
    assert shown["participants"][2] == {"identity": "a", "participant_sid": None}
    closing = client.delete(f"/api/v1/sessions/{session_id}", headers=AUTH)
    assert closing.status_code == 202
    assert closing.json["job_id"] == job_catalog.session_close_job_id(session_id)
    assert client.get("/api/v1/sessions/BS" + "0" * 32, headers=AUTH).status_code == 404
    assert client.get("/api/v1/sessions/nope", headers=AUTH).status_code == 400
    assert sessions.load(app.extensions["bindery"].redis, session_id).ttl == 7200


@pytest.mark.parametrize(
    "body, field",
    [
        ({"pool": "nope", "participants": [{"address": C1}, {"identity": "a"}]}, "pool"),
        ({"participants": [{"address": C1}]}, "participants"),
        ({"participants": [{"address": C1}, {"identity": 7}]}, "participants[1].identity"),
        ({"participants": [{"address": C1}, {"identity": "a"}], "ttl": "1m"}, "ttl"),
    ],
)
def test_bad_sessions_are_refused_naming_the_field(client, body, field):
    put_pool(client)
    answer = client.post("/api/v1/sessions", json=body, headers=AUTH)
    assert answer.status_code == 400 and answer.json["field"] == field, answer.json


def test_pool_of(client, app):
    put_pool(client)
    connection = app.extensions["bindery"].redis
    assert pools.pool_of(connection, P1) == "default"
    assert pools.pool_of(connection, "+15559999999") is None
