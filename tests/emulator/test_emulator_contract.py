"""The contract facts kept in the project: current with Twilio's description, and the checker."""

from __future__ import annotations

import re

import pytest

from emulator.contract import Contract
from emulator.contract.derive import DEFAULT_SOURCE, FACTS, derived_text, main

CH = "CH" + "a" * 32
AC = "AC" + "b" * 32


@pytest.mark.skipif(
    not DEFAULT_SOURCE.is_file(),
    reason=f"Twilio's OpenAPI description is not at {DEFAULT_SOURCE}: nothing to compare with",
)
def test_the_committed_facts_are_current():
    assert FACTS.read_text() == derived_text(DEFAULT_SOURCE), (
        "emulator/contract/conversations_v1.json is stale: run python -m emulator.contract.derive"
    )


def test_derive_refuses_a_missing_description(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "nowhere.json")])
    assert exited.value.code == 2
    assert "no OpenAPI description" in capsys.readouterr().err


def test_the_facts_cover_what_the_emulator_serves():
    contract = Contract.load()
    for method, path in (
        ("GET", "/v1/Services"),
        ("POST", "/v1/Conversations"),
        ("GET", f"/v1/Conversations/{CH}"),
        ("GET", f"/v1/Services/IS{'c' * 32}/Conversations/{CH}/Participants"),
        ("GET", "/v1/ParticipantConversations"),
        ("GET", "/v1/Configuration/Addresses"),
        ("DELETE", f"/v1/Configuration/Addresses/IG{'d' * 32}"),
    ):
        assert contract.operation(method, path) is not None, (method, path)
    # A literal segment wins over a placeholder.
    webhooks = contract.operation("GET", "/v1/Configuration/Webhooks")
    assert webhooks.template == "/v1/Configuration/Webhooks"
    scoped = contract.operation("GET", f"/v1/Services/IS{'c' * 32}/Configuration/Webhooks")
    assert scoped.schema.endswith("service_webhook_configuration")


def conversation(**changes):
    body = {
        "account_sid": AC,
        "chat_service_sid": "IS" + "c" * 32,
        "messaging_service_sid": "MG" + "e" * 32,
        "sid": CH,
        "friendly_name": None,
        "unique_name": None,
        "attributes": "{}",
        "state": "active",
        "date_created": "2026-01-01T00:00:00Z",
        "date_updated": "2026-01-01T00:00:00Z",
        "timers": {},
        "url": f"https://conversations.twilio.com/v1/Conversations/{CH}",
        "links": {"participants": f"https://conversations.twilio.com/v1/Conversations/{CH}/P"},
        "bindings": {},
    }
    return body | changes


def test_a_matching_answer_has_no_violation():
    assert Contract.load().violations("GET", f"/v1/Conversations/{CH}", 200, conversation()) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (conversation(state="open"), "state: 'open' is not one of"),
        (conversation(state=None), "state: null, and Twilio never answers null here"),
        (conversation(sid="XY" + "a" * 32), "does not match ^CH"),
        (conversation(attributes=7), "attributes: 7 is not of type string"),
        (conversation(date_created="yesterday"), "not an RFC 3339 date-time"),
        (conversation(url="/v1/Conversations"), "not an absolute URI"),
        (conversation(links={"x": "nope"}), "not a map of absolute URIs"),
        (conversation(extra=1), "fields Twilio does not have: extra"),
        ({k: v for k, v in conversation().items() if k != "bindings"}, "missing fields: bindings"),
    ],
)
def test_violations_name_the_field_and_the_fact(body, problem):
    found = Contract.load().violations("GET", f"/v1/Conversations/{CH}", 200, body)
    assert any(problem in p for p in found), found


def test_lists_statuses_and_unknown_operations():
    contract = Contract.load()
    meta = {
        "page": 0,
        "page_size": 50,
        "first_page_url": "https://conversations.twilio.com/v1/Conversations?PageSize=50&Page=0",
        "previous_page_url": None,
        "url": "https://conversations.twilio.com/v1/Conversations?PageSize=50&Page=0",
        "next_page_url": None,
        "key": "conversations",
    }
    page = {"conversations": [conversation(), conversation(state=7)], "meta": meta}
    assert contract.violations("GET", "/v1/Conversations", 200, page) == [
        "conversations[1].state: 7 is not of type string"
    ]
    assert contract.violations("POST", "/v1/Conversations", 200, conversation()) == [
        "status 200, Twilio answers 201"
    ]
    assert contract.violations("DELETE", f"/v1/Conversations/{CH}", 204, None) == []
    assert contract.violations("GET", "/v1/Nothing", 200, {}) == [
        "GET /v1/Nothing is not an operation of Twilio's API"
    ]
    # Only the fields present are checked when asked so.
    partial = {"sid": CH, "state": "active"}
    assert (
        contract.violations("GET", f"/v1/Conversations/{CH}", 200, partial, exact_fields=False)
        == []
    )


def test_every_route_the_emulator_serves_is_an_operation_of_twilio():
    from emulator import create_app

    contract = Contract.load()
    served = []
    for rule in create_app().url_map.iter_rules():
        if not rule.rule.startswith("/v1"):
            continue
        path = re.sub(r"<[^>]+>", "X" * 34, rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = contract.operation(method, path)
            assert operation is not None, f"{method} {rule.rule} is not in Twilio's API"
            served.append(f"{method} {operation.template}")
    assert len(served) == len(set(served)) >= 40
