"""Twilio's Conversations webhooks: `/twilio/conversations/pre` and `/twilio/conversations/post`.

Post-events are answered 200 only once their job is in Redis (503 when Redis cannot take it, so the
sender retries); a redelivery enqueues nothing new. The pre-event `onParticipantAdd` is answered from
the ledger alone, well inside Twilio's 5-second budget.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, current_app, jsonify, request

from webhooks import events
from webhooks.signature import require_twilio_signature
from workers import keys, metrics
from workers.addresses import mask
from workers.dispatch import stable_id

log = logging.getLogger(__name__)

blueprint = Blueprint("conversations", __name__, url_prefix="/twilio/conversations")


def _params():
    """Form parameters for POST, the query string for Method=GET, the object of a JSON body."""
    if request.method != "POST":
        return request.args
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise events.BadEvent("body", "must be a JSON object of event parameters")
        return body
    return request.form


def _bad(error: events.BadEvent):
    return jsonify(error=str(error), field=error.field), 400


@blueprint.route("/post", methods=["POST", "GET"])
@require_twilio_signature
def post_event():
    services = current_app.extensions["bindery"]
    try:
        event = events.parse_post(_params(), received_at=time.time())
    except events.BadEvent as error:
        services.count("bad_request")
        metrics.WEBHOOKS.labels("post", "400").inc()
        return _bad(error)
    except events.UnhandledEvent as unhandled:
        services.count(f"ignored:{unhandled}"[:80])
        metrics.WEBHOOKS.labels("unhandled", "200").inc()
        return jsonify(status="ignored", event_type=str(unhandled)), 200

    token = request.headers.get("I-Twilio-Idempotency-Token", "")
    job_id = stable_id("event", token) if token else stable_id("event", event.delivery_key())
    function, kwargs = event.job()
    job, created = services.dispatcher.enqueue(
        function, kwargs, kind=f"event:{event.event_type}", job_id=job_id
    )
    metrics.WEBHOOKS.labels(event.event_type, "200" if created else "200-duplicate").inc()
    return jsonify(status="accepted", job_id=job.id, duplicate=not created), 200


@blueprint.route("/pre", methods=["POST", "GET"])
@require_twilio_signature
def pre_event():
    services = current_app.extensions["bindery"]
    try:
        event = events.parse_pre(_params())
    except events.BadEvent as error:
        services.count("bad_request")
        metrics.WEBHOOKS.labels("pre", "400").inc()
        return _bad(error)
    if event is None:
        metrics.WEBHOOKS.labels("pre-other", "200").inc()
        return jsonify({}), 200
    response = _decide_participant_add(services, event)
    metrics.WEBHOOKS.labels(event.event_type, str(response[1])).inc()
    return response


def _decide_participant_add(services, event: events.ParticipantAdd):
    ledger, conversation = services.ledger, event.conversation_sid
    if event.identity:
        if ledger.has_identity(conversation, event.identity):
            return jsonify(reason="already_present", identity=event.identity), 409
        return jsonify({}), 200
    pair = ledger.pair(keys.pair_id(event.address, event.proxy_address))
    if pair is None or not pair.held:
        return jsonify({}), 200
    if pair.holder == conversation:
        return jsonify(reason="already_present"), 409

    answer = {"reason": "pair_in_use", "holder": pair.holder}
    settings = services.settings
    holder = ledger.conversation(pair.holder)
    idle = holder.state == "inactive" or (
        holder.last_activity and time.time() - holder.last_activity > settings.stale_after
    )
    policy = settings.conflict_policy
    if policy == "move" or (policy == "close-stale" and idle):
        # Refuse this add (Twilio would answer 50416) and let a job deal with the holder first.
        job, _ = services.dispatcher.enqueue(
            "workers.jobs.participant_add",
            {
                "conversation_sid": conversation,
                "address": event.address,
                "proxy_address": event.proxy_address,
                "policy": policy,
            },
            kind="participant-add",
            job_id=stable_id(
                "pre-add", conversation, event.address, event.proxy_address, pair.holder
            ),
        )
        answer.update(resolution=policy, job_id=job.id)
    log.info("refused add of %s to %s: held by %s", mask(event.address), conversation, pair.holder)
    return jsonify(answer), 409
