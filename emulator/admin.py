"""Emulator-only endpoints under /_emulator: JSON in and out, no authentication, no faults.

- `GET  /_emulator/`                 account SID, default service SID, the emulator's time, and
                                     what bumps date_updated
- `GET  /_emulator/stats`            requests, errors by code, webhooks, REST calls by operation
- `POST /_emulator/reset`            all state, stats and faults back to a fresh start
- `GET|POST /_emulator/faults`       error rates, latency and limits (see `limits.Faults`)
- `GET|POST /_emulator/clock`        the emulator's time; `{"advance_seconds": N}` moves it
- `POST /_emulator/inbound`          an inbound message `{"from", "to", "body"}` (SMS, WhatsApp, ...)
- `GET|POST /_emulator/numbers`      a number's own incoming-message webhook `{"number", "sms_url",
                                     "sms_method"}`: where a message no conversation takes goes
- `POST /_emulator/sdk/participants` an SDK-originated participant add
- `POST /_emulator/webhooks/flush`   wait until queued post-events were sent
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from emulator.clock import iso
from emulator.engine import Engine
from emulator.limits import Faults
from emulator.participants import ParticipantSpec

blueprint = Blueprint("admin", __name__, url_prefix="/_emulator")


def _engine() -> Engine:
    return current_app.extensions["emulator"]


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    return data


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@blueprint.errorhandler(_BadRequest)
def _bad_request(error: _BadRequest) -> tuple[Response, int]:
    return jsonify({"message": error.message, "status": 400}), 400


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be a string")
    return value


@blueprint.get("/")
def info() -> Response:
    engine = _engine()
    return jsonify(
        {
            "account_sid": engine.config.account_sid,
            "default_service_sid": engine.config.service_sid,
            "now": iso(engine.clock.now()),
            "date_updated_on": list(engine.config.date_updated_on),
        }
    )


@blueprint.get("/stats")
def stats() -> Response:
    engine = _engine()
    return jsonify({**engine.stats.snapshot(), "state": engine.store.counts()})


@blueprint.post("/reset")
def reset() -> Response:
    engine = _engine()
    engine.reset()
    return jsonify({"reset": True, "default_service_sid": engine.config.service_sid})


@blueprint.route("/faults", methods=["GET", "POST"])
def faults() -> Response:
    """Each POST replaces the whole set: a missing field takes its startup value (off unless the
    CLI set it), so `{}` clears every fault."""
    limits = _engine().limits
    if request.method == "POST":
        try:
            limits.configure(Faults.parse(_body(), limits.baseline))
        except ValueError as error:
            raise _BadRequest(str(error)) from None
    return jsonify(limits.faults.as_dict())


@blueprint.route("/clock", methods=["GET", "POST"])
def clock() -> Response:
    engine = _engine()
    if request.method == "GET":
        return jsonify({"now": iso(engine.clock.now())})
    seconds = _body().get("advance_seconds", 0)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise _BadRequest("advance_seconds must be a number >= 0")
    now, fired = engine.advance_clock(seconds)
    return jsonify({"now": iso(now), "timers_fired": fired})


@blueprint.post("/inbound")
def inbound() -> tuple[Response, int]:
    """A message from `from` (the customer) to `to` (the Twilio number): to the conversation
    holding the pair, else autocreated in the service of `to`'s Address Configuration (the default
    service when it has none). Answers `{"conversation_sid", "created", "message_sid",
    "chat_service_sid", "address_configuration_sid"}`; 403 when a pre-event (onConversationAdd or
    onMessageAdd) rejected the message; `conversation_sid` null and a `message` when `to`'s
    configuration has autocreation off."""
    data, engine = _body(), _engine()
    outcome = engine.store.receive_inbound(
        _text(data, "from", required=True) or "",
        _text(data, "to", required=True) or "",
        _text(data, "body"),
        pre_event=engine.pre_event,
    )
    body = {
        "conversation_sid": outcome.conversation_sid,
        "created": outcome.created,
        "message_sid": outcome.message_sid,
        "chat_service_sid": outcome.service_sid,
        "address_configuration_sid": outcome.address_configuration_sid,
    }
    if outcome.rejected_status is not None:
        body |= {
            "rejected_status": outcome.rejected_status,
            "rejected_by": outcome.rejected_by,
            "message": f"{outcome.rejected_by} was rejected by the pre-event webhook",
        }
        return jsonify(body), 403
    if outcome.not_routed:
        body["message"] = outcome.not_routed
        body["sms_webhook_message_sid"] = engine.incoming_sms(
            data["from"], data["to"], _text(data, "body")
        )
    return jsonify(body), 200


@blueprint.route("/numbers", methods=["GET", "POST"])
def numbers() -> Response:
    """Each number's incoming-message webhook; a POST sets one (no `sms_url`: removes it)."""
    engine = _engine()
    if request.method == "POST":
        data = _body()
        try:
            engine.numbers.set(
                _text(data, "number", required=True) or "",
                _text(data, "sms_url"),
                _text(data, "sms_method") or "POST",
            )
        except ValueError as error:
            raise _BadRequest(str(error)) from None
    return jsonify({"numbers": [w.as_dict() for w in engine.numbers.all()]})


@blueprint.post("/sdk/participants")
def sdk_participants() -> tuple[Response, int]:
    """`{"conversation_sid", "identity"}` or `{"conversation_sid", "address", "proxy_address"}`
    (optional `projected_address`, `attributes`, `client_identity`)."""
    data = _body()
    identity = _text(data, "identity")
    spec = ParticipantSpec(
        identity=identity,
        address=_text(data, "address"),
        proxy_address=_text(data, "proxy_address"),
        projected_address=_text(data, "projected_address"),
        attributes=_text(data, "attributes"),
    )
    client_identity = _text(data, "client_identity") or identity or "sdk-user"
    outcome = _engine().sdk_add_participant(
        _text(data, "conversation_sid", required=True) or "", spec, client_identity
    )
    body = {
        "added": outcome.added,
        "participant_sid": outcome.participant_sid,
        "rejected_status": outcome.rejected_status,
    }
    return jsonify(body), 201 if outcome.added else 200


@blueprint.post("/webhooks/flush")
def flush_webhooks() -> tuple[Response, int]:
    timeout = _body().get("timeout_seconds", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
        raise _BadRequest("timeout_seconds must be a number >= 0")
    done = _engine().sender.flush(float(timeout))
    return jsonify({"flushed": done}), 200 if done else 504
