"""The app's own requests, under `/api/v1`, authenticated with `Authorization: Bearer <token>`."""

from __future__ import annotations

import hmac
import re
import time
from datetime import datetime
from functools import wraps
from importlib import resources

from flask import Blueprint, current_app, jsonify, request

from workers import failures, job_catalog
from workers.addresses import address_problem, is_sid, pair_problem
from workers.settings import CONFLICT_POLICIES, SettingsError, parse_duration
from workers.states import STATES

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class BadRequest(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@blueprint.errorhandler(BadRequest)
def bad_request(error: BadRequest):
    return jsonify(error=str(error), field=error.field), 400


def require_token(view):
    @wraps(view)
    def checked(*args, **kwargs):
        expected = current_app.config["BINDERY_SETTINGS"].api_token
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(given.strip().encode(), expected.encode())
        ):
            return (
                jsonify(error="missing or wrong bearer token"),
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        return view(*args, **kwargs)

    return checked


def _body() -> dict:
    if not request.is_json:
        raise BadRequest("body", "must be JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    return body


def _string(body: dict, name: str, limit: int = 256, required: bool = False) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(name, "is required")
        return ""
    if not isinstance(value, str):
        raise BadRequest(name, "must be a string")
    if required and not value:
        raise BadRequest(name, "must not be empty")
    if len(value) > limit:
        raise BadRequest(name, f"is longer than {limit} characters")
    return value


def _conversation(sid: str) -> str:
    if not is_sid(sid, "CH"):
        raise BadRequest("conversation_sid", "is not a CH SID")
    return sid


def _reject_unknown(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(unknown[0], "is not a known field")


@blueprint.post("/conversations/<sid>/participants")
@require_token
def add_participant(sid: str):
    conversation = _conversation(sid)
    body = _body()
    _reject_unknown(
        body,
        {"address", "proxy_address", "projected_address", "identity", "policy", "idempotency_key"},
    )
    identity = _string(body, "identity")
    address = _string(body, "address")
    proxy = _string(body, "proxy_address")
    projected = _string(body, "projected_address")
    if identity and (address or proxy):
        raise BadRequest("identity", "give either identity or address and proxy_address, not both")
    if projected and not identity:
        raise BadRequest("projected_address", "is for a chat participant (give identity)")
    if projected and (problem := address_problem(projected)):
        raise BadRequest("projected_address", problem)
    if not identity:
        if not address:
            raise BadRequest("address", "is required (or give identity)")
        if proxy:
            problem = pair_problem(address, proxy)
            if problem:
                raise BadRequest(*problem)
        elif problem := address_problem(address):  # a group-MMS participant: no proxy
            raise BadRequest("address", problem)
    policy = _string(body, "policy")
    if policy and policy not in CONFLICT_POLICIES:
        raise BadRequest("policy", "must be one of " + ", ".join(CONFLICT_POLICIES))
    key = _string(body, "idempotency_key", limit=200)

    kwargs = {
        "conversation_sid": conversation,
        "address": address,
        "proxy_address": proxy,
        "identity": identity,
        "policy": policy,
    }
    if projected:
        kwargs["projected_address"] = projected
    job_id = job_catalog.add_job_id(conversation, key) if key else None
    return _enqueue(job_catalog.PARTICIPANT_ADD, kwargs, "participant-add", job_id)


@blueprint.post("/conversations/<sid>/state")
@require_token
def change_state(sid: str):
    conversation = _conversation(sid)
    body = _body()
    _reject_unknown(body, {"state", "at", "idempotency_key"})
    state = _string(body, "state", required=True)
    if state not in STATES:
        raise BadRequest("state", "must be active, inactive or closed")
    at = _string(body, "at")
    if at:
        try:
            parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("at", "is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise BadRequest("at", "needs a time zone (Z or +00:00)")
        moment = {"at": parsed.timestamp()}
    else:
        # This host's time; the worker turns it into Twilio's, the clock the ledger's times are
        # on, with the offset it has just heard from Twilio.
        moment = {"requested_at": time.time()}
    key = _string(body, "idempotency_key", limit=200)
    kwargs = {"conversation_sid": conversation, "state": state, **moment, "reason": "api"}
    job_id = job_catalog.state_job_id(conversation, key) if key else None
    return _enqueue(job_catalog.STATE_CHANGE, kwargs, "state-change", job_id)


def _enqueue(function: str, kwargs: dict, kind: str, job_id: str | None):
    queue = current_app.extensions["bindery"].queue
    job, created = queue.enqueue(function, kwargs, kind=kind, job_id=job_id)
    return jsonify(job_id=job.id, duplicate=not created), 202


@blueprint.get("/openapi.json")
def openapi():
    """The API's OpenAPI 3 description, written by hand (`webhooks/openapi.json`); served without
    the token: it describes requests, it holds no data."""
    description = resources.files("webhooks").joinpath("openapi.json").read_text()
    return current_app.response_class(description, mimetype="application/json")


@blueprint.get("/jobs/<job_id>")
@require_token
def job_status(job_id: str):
    _job_id(job_id)
    info = failures.show(_runtime(), job_id)
    if info is None:
        return jsonify(error=f"no job {job_id}"), 404
    return jsonify(info)


@blueprint.get("/jobs")
@require_token
def list_jobs():
    status = request.args.get("status", "failed")
    if status not in ("failed", "conflict"):
        raise BadRequest("status", "must be failed or conflict")
    since = _since(request.args.get("since", ""))
    if status == "conflict":
        return jsonify(jobs=failures.conflict_items(_runtime(), since=since))
    conversation, code = _job_filters(request.args)
    items = failures.failed(_runtime(), conversation=conversation, code=code, since=since)
    return jsonify(jobs=[item.to_dict() for item in items])


@blueprint.post("/jobs/<job_id>/replay")
@require_token
def replay_job(job_id: str):
    _job_id(job_id)
    result = failures.replay(_runtime(), job_id)
    if result == "missing":
        return jsonify(error=f"no job {job_id}"), 404
    if result == "not_failed":
        return jsonify(error=f"job {job_id} is not in the failed list", job_id=job_id), 409
    return jsonify(job_id=job_id, status=result), 202


@blueprint.post("/jobs/replay")
@require_token
def replay_jobs():
    body = request.get_json(silent=True) if request.data else {}
    if not isinstance(body, dict):
        raise BadRequest("body", "must be a JSON object")
    _reject_unknown(body, {"conversation", "code", "since", "dry_run"})
    conversation, code = _job_filters(body)
    since = _since(body.get("since") or "")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run", "must be true or false")
    rt = _runtime()
    ids = [
        item.id for item in failures.failed(rt, conversation=conversation, code=code, since=since)
    ]
    if dry_run:
        return jsonify(dry_run=True, job_ids=ids)
    results = {job_id: failures.replay(rt, job_id) for job_id in ids}
    return jsonify(replayed=results), 202


def _runtime():
    return current_app.extensions["bindery"].runtime


def _job_id(job_id: str) -> None:
    if not JOB_ID.fullmatch(job_id):
        raise BadRequest("job_id", "is not a job id")


def _job_filters(source) -> tuple[str, int]:
    conversation = source.get("conversation") or ""
    if conversation and not (isinstance(conversation, str) and is_sid(conversation, "CH")):
        raise BadRequest("conversation", "is not a CH SID")
    code = source.get("code") or 0
    try:
        code = int(code)
    except (TypeError, ValueError):
        raise BadRequest("code", "must be a Twilio error code (a number)") from None
    return conversation, code


def _since(text) -> float:
    if not text:
        return 0.0
    if not isinstance(text, str):
        raise BadRequest("since", "must be a duration like 90s, 15m, 1h or 2d")
    try:
        return time.time() - parse_duration(text, "since")
    except SettingsError:
        raise BadRequest("since", "must be a duration like 90s, 15m, 1h or 2d") from None
