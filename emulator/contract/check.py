"""Checking an answer of the emulated API against the facts in `conversations_v1.json`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FACTS = Path(__file__).with_name("conversations_v1.json")

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    """The path as Twilio's description writes it: `/v1/Conversations/{Sid}`."""
    statuses: tuple[int, ...]
    schema: str | None
    list_key: str | None
    pattern: re.Pattern[str]


class Contract:
    """Twilio's operations and resources; `violations()` lists how an answer breaks them."""

    def __init__(self, facts: dict[str, Any]) -> None:
        self.page_meta: dict[str, Any] = facts["page_meta"]
        self.schemas: dict[str, dict[str, Any]] = facts["schemas"]
        operations = []
        for key, operation in facts["operations"].items():
            method, template = key.split(" ", 1)
            operations.append(
                Operation(
                    method,
                    template,
                    tuple(operation["status"]),
                    operation.get("schema"),
                    operation.get("list"),
                    re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))),
                )
            )
        # Fewer placeholders first, so a literal segment wins: /v1/Configuration/Webhooks is not
        # /v1/Configuration/{anything}.
        self.operations = sorted(operations, key=lambda o: o.template.count("{"))

    @classmethod
    @cache
    def load(cls, path: Path = FACTS) -> Contract:
        return cls(json.loads(path.read_text()))

    def operation(self, method: str, path: str) -> Operation | None:
        for operation in self.operations:
            if operation.method == method.upper() and operation.pattern.fullmatch(path):
                return operation
        return None

    def violations(
        self, method: str, path: str, status: int, body: Any, *, exact_fields: bool = True
    ) -> list[str]:
        """Every way the answer differs from the operation's facts; `[]` when it matches.

        `exact_fields`: every field of the resource present and none other (Twilio sends all of
        them, null or not); otherwise only the fields present are checked."""
        operation = self.operation(method, path)
        if operation is None:
            return [f"{method} {path} is not an operation of Twilio's API"]
        found = []
        if status not in operation.statuses:
            expected = " or ".join(map(str, operation.statuses))
            found.append(f"status {status}, Twilio answers {expected}")
        if operation.schema is None:
            return found
        if not isinstance(body, dict):
            return [*found, f"the body is {type(body).__name__}, not an object"]
        if operation.list_key is None:
            return found + self._resource(operation.schema, body, "", exact_fields)
        found += self._fields(self.page_meta, body.get("meta"), "meta", exact_fields)
        items = body.get(operation.list_key)
        if not isinstance(items, list):
            return [*found, f"{operation.list_key}: not a list"]
        extra = set(body) - {"meta", operation.list_key}
        if extra:
            found.append(f"fields Twilio does not have: {', '.join(sorted(extra))}")
        for number, item in enumerate(items):
            where = f"{operation.list_key}[{number}]."
            if not isinstance(item, dict):
                found.append(f"{where[:-1]}: not an object")
                continue
            found += self._resource(operation.schema, item, where, exact_fields)
        return found

    def _resource(self, schema: str, body: dict[str, Any], where: str, exact: bool) -> list[str]:
        return self._fields(self.schemas[schema], body, where.rstrip("."), exact)

    def _fields(self, fields: dict[str, Any], body: Any, where: str, exact: bool) -> list[str]:
        prefix = f"{where}." if where else ""
        if not isinstance(body, dict):
            return [f"{where or 'the body'}: not an object"]
        found = []
        if exact:
            missing = [name for name in fields if name not in body]
            extra = [name for name in body if name not in fields]
            if missing:
                found.append(f"{prefix}missing fields: {', '.join(missing)}")
            if extra:
                found.append(f"{prefix}fields Twilio does not have: {', '.join(extra)}")
        for name, value in body.items():
            if name in fields:
                problem = _value_problem(fields[name], value)
                if problem:
                    found.append(f"{prefix}{name}: {problem}")
        return found


def _value_problem(facts: dict[str, Any], value: Any) -> str | None:
    if value is None:
        return None if facts.get("nullable") else "null, and Twilio never answers null here"
    kind = facts.get("type")
    if kind is None:
        return None  # any JSON value
    if not isinstance(value, _TYPES[kind]) or (
        kind in ("integer", "number") and isinstance(value, bool)
    ):
        return f"{value!r} is not of type {kind}"
    if "enum" in facts and value not in facts["enum"]:
        return f"{value!r} is not one of {facts['enum']}"
    if "pattern" in facts and isinstance(value, str) and not re.search(facts["pattern"], value):
        return f"{value!r} does not match {facts['pattern']}"
    form = facts.get("format")
    if form == "date-time" and not _DATE_TIME.fullmatch(value):
        return f"{value!r} is not an RFC 3339 date-time"
    if form == "uri" and not _is_uri(value):
        return f"{value!r} is not an absolute URI"
    if form == "uri-map" and not all(isinstance(v, str) and _is_uri(v) for v in value.values()):
        return f"{value!r} is not a map of absolute URIs"
    if kind == "array" and facts.get("items"):
        for item in value:
            problem = _value_problem(facts["items"], item)
            if problem:
                return f"item {problem}"
    return None


def _is_uri(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)
