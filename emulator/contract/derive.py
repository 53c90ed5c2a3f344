"""Derive `conversations_v1.json` from Twilio's OpenAPI description of Conversations v1.

    python -m emulator.contract.derive [path/to/twilio_conversations_v1.json] [--check]

The description comes from the public `twilio/twilio-oai` repository
(`spec/json/twilio_conversations_v1.json`); by default it is read from
`../shared/twilio/` beside the checkout. Only facts are kept: for each operation its success status
and the resource it answers (and the list key of a list), for each resource its fields in Twilio's
order with their type, format, pattern, enum and whether they may be null. Descriptions, examples
and request parameters are left out. `--check` writes nothing and exits 1 when the committed file
differs from what the description gives.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

FACTS = Path(__file__).with_name("conversations_v1.json")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "twilio" / "twilio_conversations_v1.json"

METHODS = ("get", "post", "delete")
FIELD_FACTS = ("type", "format", "pattern", "enum", "items", "nullable")


def derive(openapi: dict[str, Any]) -> dict[str, Any]:
    """The facts of one OpenAPI description, as a JSON-ready dict."""
    components = openapi["components"]["schemas"]
    operations: dict[str, Any] = {}
    page_meta: dict[str, Any] | None = None
    used: set[str] = set()
    for path, item in openapi["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation, meta = _operation(item[method])
            if "schema" in operation:
                used.add(operation["schema"])
            if meta is not None:
                if page_meta is not None and meta != page_meta:
                    raise ValueError(f"{method.upper()} {path}: its page meta differs from others")
                page_meta = meta
            operations[f"{method.upper()} {path}"] = operation
    schemas = {
        name: {
            field: _field(spec, components)
            for field, spec in components[name].get("properties", {}).items()
        }
        for name in sorted(used)
    }
    return {
        "about": (
            "Facts derived by `python -m emulator.contract.derive` from Twilio's OpenAPI "
            f"description of {openapi['info']['title']} v1 (info.version "
            f"{openapi['info']['version']}): each operation's success status and resource, "
            "each resource's fields. Do not edit by hand."
        ),
        "page_meta": {field: _field(spec, components) for field, spec in (page_meta or {}).items()},
        "operations": dict(sorted(operations.items(), key=lambda kv: _path_order(kv[0]))),
        "schemas": schemas,
    }


def _path_order(key: str) -> tuple[str, str]:
    method, path = key.split(" ", 1)
    return path, method


def _operation(operation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """`{"status", "schema"}`, `{"status", "list", "schema"}` or `{"status"}`, and the page meta.

    `status` lists the success codes (ConversationWithParticipants answers 201 or 202), which all
    carry the same resource."""
    found: dict[str, Any] = {}
    meta = None
    answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
    for code, answer in sorted(answers.items()):
        shape, meta = _answer(answer.get("content", {}).get("application/json"))
        if found and shape != found["shape"]:
            raise ValueError(f"{operation.get('operationId')}: success answers of different shapes")
        found = {"status": [*found.get("status", []), int(code)], "shape": shape}
    if not found:
        raise ValueError(f"{operation.get('operationId')}: no success answer")
    return {"status": found["status"], **found["shape"]}, meta


def _answer(content: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if content is None:
        return {}, None
    schema = content["schema"]
    if "$ref" in schema:
        return {"schema": _ref_name(schema["$ref"])}, None
    properties = schema["properties"]
    [key] = [name for name in properties if name != "meta"]
    shape = {"list": key, "schema": _ref_name(properties[key]["items"]["$ref"])}
    return shape, properties["meta"]["properties"]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _field(spec: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in spec:  # an enum, kept inline
        spec = {
            **components[_ref_name(spec["$ref"])],
            **{k: v for k, v in spec.items() if k != "$ref"},
        }
    facts = {name: spec[name] for name in FIELD_FACTS if name in spec}
    if "items" in facts:
        facts["items"] = {k: v for k, v in facts["items"].items() if k in FIELD_FACTS}
    return facts


def render(facts: dict[str, Any]) -> str:
    """JSON with one operation or one field per line: compact, and diffs read line by line."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{", f'  "about": {one(facts["about"])},', '  "page_meta": {']
    lines += _block(facts["page_meta"], "    ")
    lines += ["  },", '  "operations": {']
    lines += _block(facts["operations"], "    ")
    lines += ["  },", '  "schemas": {']
    names = list(facts["schemas"])
    for number, name in enumerate(names):
        lines.append(f"    {one(name)}: {{")
        lines += _block(facts["schemas"][name], "      ")
        lines.append("    }" + ("," if number < len(names) - 1 else ""))
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _block(items: dict[str, Any], indent: str) -> list[str]:
    rows = [
        f"{indent}{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in items.items()
    ]
    return [row + ("," if number < len(rows) - 1 else "") for number, row in enumerate(rows)]


def derived_text(source: Path) -> str:
    return render(derive(json.loads(source.read_text())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"no OpenAPI description at {args.source}")
    text = derived_text(args.source)
    if args.check:
        current = FACTS.read_text() if FACTS.exists() else ""
        if current != text:
            print(
                f"{FACTS} is out of date: run python -m emulator.contract.derive", file=sys.stderr
            )
            return 1
        print(f"{FACTS} is current")
        return 0
    FACTS.write_text(text)
    print(f"wrote {FACTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
