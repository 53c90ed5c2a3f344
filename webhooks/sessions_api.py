"""The app's pools and sessions, under `/api/v1` with the same bearer token as `webhooks/api.py`.

Pools (`workers/pools.py`): `GET /pools`, `PUT|GET /pools/<name>`, `POST /pools/<name>/numbers`,
`DELETE /pools/<name>/numbers/<number>`. Sessions (`workers/sessions.py`): `POST /sessions`
(202, then the job), `GET /sessions/<id>`, `DELETE /sessions/<id>`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from webhooks.api import BadRequest, _body, _reject_unknown, require_token
from workers import pools, sessions
from workers.addresses import is_sid

blueprint = Blueprint("sessions_api", __name__, url_prefix="/api/v1")


@blueprint.errorhandler(BadRequest)
def bad_request(error: BadRequest):
    return jsonify(error=str(error), field=error.field), 400


@blueprint.errorhandler(pools.PoolError)
def pool_refused(error: pools.PoolError):
    body = {"error": str(error)}
    if error.field:
        body["field"] = error.field
    if error.status == 409 and error.sessions:
        body["sessions"] = error.sessions
    return jsonify(body), error.status


@blueprint.errorhandler(sessions.RequestProblem)
def session_refused(error: sessions.RequestProblem):
    return jsonify(error=str(error), field=error.field), 400


def _runtime():
    return current_app.extensions["bindery"].runtime


def _connection():
    return _runtime().connection


def _pool_name(name: str) -> str:
    problem = pools.name_problem(name)
    if problem:
        raise BadRequest("pool", problem)
    return name


def _entry(item, where: str) -> pools.PoolNumber:
    if not isinstance(item, dict):
        raise BadRequest(where, "must be an object with a number")
    _reject_unknown(item, {"number", "country", "area_code"})
    for name in ("country", "area_code"):
        if item.get(name) is not None and not isinstance(item[name], str):
            raise BadRequest(f"{where}.{name}", "must be a string")
    if "number" not in item:
        raise BadRequest(f"{where}.number", "is required")
    try:
        return pools.make_number(
            item["number"], item.get("country") or "", item.get("area_code") or "", where
        )
    except pools.PoolError as error:
        field = error.field if error.field != where else f"{where}.number"
        raise BadRequest(field, str(error).split(": ", 1)[-1]) from None


def _pool_view(name: str):
    sessions.settle_pool(_connection(), name)
    found = pools.show(_connection(), name)
    if found is None:
        return None
    return {"pool": name, "numbers": [n.to_dict() for n in found]}


@blueprint.get("/pools")
@require_token
def list_pools():
    connection = _connection()
    return jsonify(
        pools=[
            {"pool": name, "numbers": len(pools.numbers(connection, name))}
            for name in pools.names(connection)
        ]
    )


@blueprint.put("/pools/<name>")
@require_token
def put_pool(name: str):
    name = _pool_name(name)
    body = _body()
    _reject_unknown(body, {"numbers"})
    entries = body.get("numbers")
    if not isinstance(entries, list):
        raise BadRequest("numbers", "must be a list of {number, country, area_code}")
    parsed = [_entry(item, f"numbers[{i}]") for i, item in enumerate(entries)]
    seen: set[str] = set()
    for i, entry in enumerate(parsed):
        if entry.number in seen:
            raise BadRequest(f"numbers[{i}].number", "appears twice")
        seen.add(entry.number)
    sessions.settle_pool(_connection(), name)
    created = pools.put(_connection(), name, parsed)
    return jsonify(_pool_view(name)), 201 if created else 200


@blueprint.get("/pools/<name>")
@require_token
def get_pool(name: str):
    view = _pool_view(_pool_name(name))
    if view is None:
        return jsonify(error=f"no pool {name}"), 404
    return jsonify(view)


@blueprint.post("/pools/<name>/numbers")
@require_token
def add_number(name: str):
    name = _pool_name(name)
    entry = _entry(_body(), "number")
    created = pools.add(_connection(), name, entry)
    return jsonify(pool=name, number=entry.to_dict(), created=created), 201 if created else 200


@blueprint.delete("/pools/<name>/numbers/<number>")
@require_token
def remove_number(name: str, number: str):
    name = _pool_name(name)
    sessions.settle_number(_connection(), number)
    pools.remove(_connection(), name, number)
    return jsonify(pool=name, removed=number)


@blueprint.post("/sessions")
@require_token
def create_session():
    request_ = sessions.SessionRequest.from_body(_body())
    if not pools.exists(_connection(), request_.pool):
        raise BadRequest("pool", f"there is no pool {request_.pool} (PUT /api/v1/pools/<name>)")
    opened = sessions.start(_runtime(), request_)
    return jsonify(
        session_id=opened.session_id, job_id=opened.job_id, duplicate=opened.duplicate
    ), 202


def _session_id(session_id: str) -> str:
    if not is_sid(session_id, "BS"):
        raise BadRequest("session_id", "is not a session id (BS and 32 hex digits)")
    return session_id


@blueprint.get("/sessions/<session_id>")
@require_token
def get_session(session_id: str):
    found = sessions.get(_connection(), _session_id(session_id))
    if found is None:
        return jsonify(error=f"no session {session_id}"), 404
    return jsonify(found)


@blueprint.delete("/sessions/<session_id>")
@require_token
def close_session(session_id: str):
    try:
        status, job_id = sessions.close(_runtime(), _session_id(session_id))
    except KeyError:
        return jsonify(error=f"no session {session_id}"), 404
    if not job_id:
        return jsonify(session_id=session_id, status=status, job_id=None), 200
    return jsonify(session_id=session_id, status=status, job_id=job_id), 202
