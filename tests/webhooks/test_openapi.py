"""The hand-written OpenAPI description of /api/v1 (`webhooks/openapi.json`) against the real
routes: it is valid OpenAPI 3.1, every route in the app's url_map under /api/v1 is documented
(path and method), every documented operation answers its example request (not 404 or 405) with a
status it documents and a body its schema accepts, and the app serves it without the token."""

from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema
from openapi_spec_validator import validate

from tests.conftest import API_TOKEN

PREFIX = "/api/v1"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
METHODS = ("get", "post", "put", "patch", "delete")


def description() -> dict:
    return json.loads(resources.files("webhooks").joinpath("openapi.json").read_text())


def documented() -> set[tuple[str, str]]:
    """(METHOD, flask rule) of every documented operation (`{sid}` written `<sid>`)."""
    found = set()
    for path, item in description()["paths"].items():
        rule = PREFIX + re.sub(r"\{(\w+)\}", r"<\1>", path)
        found |= {(method.upper(), rule) for method in item if method in METHODS}
    return found


def routed(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            found |= {(m, rule.rule) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_the_description_is_valid_openapi():
    validate(description())


def test_every_api_route_is_documented_and_nothing_else(app):
    assert routed(app), "no /api/v1 route found: the check would pass on nothing"
    assert routed(app) - documented() == set(), "routes missing from webhooks/openapi.json"
    assert documented() - routed(app) == set(), "documented operations the app does not serve"


def test_it_is_served_without_the_token(client):
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == description()


def _schema(spec: dict, schema: dict) -> dict:
    """A response schema made standalone: its `#/components/...` references resolve."""
    return {**schema, "components": spec["components"]}


def _resolve(spec: dict, item: dict) -> dict:
    while "$ref" in item:
        node = spec
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def _example_request(spec: dict, path: str, operation: dict, job_id: str) -> tuple[str, dict, dict]:
    """The URL, query and JSON body of the operation's example request."""
    query, url = {}, path
    for parameter in operation.get("parameters", []):
        parameter = _resolve(spec, parameter)
        value = job_id if parameter["name"] == "job_id" else parameter.get("example")
        if parameter["in"] == "path":
            assert value is not None, f"{path}: path parameter {parameter['name']} has no example"
            url = url.replace("{" + parameter["name"] + "}", str(value))
        elif value is not None:
            query[parameter["name"]] = value
    body = None
    if "requestBody" in operation:
        content = operation["requestBody"]["content"]["application/json"]
        body = content.get("example")
        if body is not None:
            jsonschema.validate(body, _schema(spec, content["schema"]))  # the example is right
    return PREFIX + url, query, body


def test_every_documented_operation_answers_its_example(client, fake_redis):
    spec = description()
    # A real job for the operations that name one: the first example's answer.
    add = spec["paths"]["/conversations/{sid}/participants"]["post"]
    url, _, body = _example_request(spec, "/conversations/{sid}/participants", add, "")
    job_id = client.post(url, json=body, headers=AUTH).json["job_id"]
    answered = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            url, query, body = _example_request(spec, path, operation, job_id)
            headers = AUTH if operation.get("security", spec["security"]) else {}
            response = client.open(
                url, method=method.upper(), query_string=query, json=body, headers=headers
            )
            label = f"{method.upper()} {path}"
            assert response.status_code not in (404, 405), (label, response.json)
            documented_answer = operation["responses"].get(str(response.status_code))
            assert documented_answer, (label, response.status_code, "is not documented")
            schema = _resolve(spec, documented_answer)["content"]["application/json"]["schema"]
            jsonschema.validate(response.json, _schema(spec, schema))
            answered.append(label)
    assert len(answered) == len(documented())
