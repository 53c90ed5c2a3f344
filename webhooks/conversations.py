"""Twilio's Conversations webhooks: `/twilio/conversations/pre` and `/twilio/conversations/post`.

Post-events are answered 200 only once their job is in Redis (503 when Redis cannot take it, so the
sender retries); a redelivery enqueues nothing new. Pre-events are answered by `workers/pre_event.py`
from the ledger, and fail open: any error there is answered 200 (counted and logged), since Twilio
enforces its own binding rule.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify, request

from webhooks import payloads
from webhooks.signature import require_twilio_signature
from workers import job_catalog, metrics, pre_event
from workers.addresses import mask

log = logging.getLogger(__name__)

blueprint = Blueprint("conversations", __name__, url_prefix="/twilio/conversations")


def _params():
    """Form parameters for POST, the query string for Method=GET, the object of a JSON body."""
    if request.method != "POST":
        return request.args
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise payloads.BadEvent("body", "must be a JSON object of event parameters")
        return body
    return request.form


def _bad(error: payloads.BadEvent):
    return jsonify(error=str(error), field=error.field), 400


@blueprint.route("/post", methods=["POST", "GET"])
@require_twilio_signature
def post_event():
    services = current_app.extensions["bindery"]
    try:
        event = payloads.parse_post(_params(), received_at=time.time())
    except payloads.BadEvent as error:
        services.count("bad_request")
        metrics.WEBHOOKS.labels("post", "400").inc()
        return _bad(error)
    except payloads.UnhandledEvent as unhandled:
        services.count(f"ignored:{unhandled}"[:80])
        metrics.WEBHOOKS.labels("unhandled", "200").inc()
        return jsonify(status="ignored", event_type=str(unhandled)), 200

    token = request.headers.get("I-Twilio-Idempotency-Token", "")
    function, kwargs = event.job()
    job_id = job_catalog.event_job_id(token, "" if token else event.delivery_key())
    created = services.queue.enqueue_once(
        function, kwargs, kind=f"event:{event.event_type}", job_id=job_id
    )
    metrics.WEBHOOKS.labels(event.event_type, "200" if created else "200-duplicate").inc()
    return jsonify(status="accepted", job_id=job_id, duplicate=not created), 200


@blueprint.route("/pre", methods=["POST", "GET"])
@require_twilio_signature
def pre_event_answer():
    services = current_app.extensions["bindery"]
    event_type = "pre"
    try:
        event = payloads.parse_pre(_params())
        if event is None:
            metrics.WEBHOOKS.labels("pre-other", "200").inc()
            return jsonify({}), 200
        event_type = event.event_type
        rt = services.pre_event_runtime
        if isinstance(event, payloads.ConversationAdd):
            answer = pre_event.conversation_add(rt, event)
        else:
            answer = pre_event.participant_add(rt, event)
    except Exception as error:  # noqa: BLE001 - fail open: Twilio enforces its own rule
        log.warning("pre-event %s let through: %s", event_type, _reason(error))
        metrics.WEBHOOKS.labels(event_type, "200-failed-open").inc()
        return jsonify({}), 200
    metrics.WEBHOOKS.labels(event_type, str(answer.status)).inc()
    if answer.status != pre_event.LET_THROUGH:
        log.info(
            "pre-event %s refused for %s in %s: %s",
            event_type,
            mask(event.address) if event.address else event.identity,
            event.conversation_sid,
            answer.body.get("reason"),
        )
    return jsonify(answer.body), answer.status


def _reason(error: Exception) -> str:
    if isinstance(error, payloads.BadEvent):
        return f"unparsed ({error.field}: {error.problem})"
    return type(error).__name__
