"""`/healthz` (the process is up), `/readyz` (it can do its job), `/metrics` (Prometheus)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import redis
from flask import Blueprint, Response, current_app, jsonify
from rq import Worker

from webhooks.api import require_token
from workers import metrics

blueprint = Blueprint("health", __name__)

HEARTBEAT_STALE = 120
"""Seconds after which a worker's last heartbeat no longer counts it as alive."""


@blueprint.get("/healthz")
def healthz():
    return jsonify(status="ok", time=time.time())


@blueprint.get("/readyz")
def readyz():
    """Ready when Redis answers and at least one worker has sent a heartbeat recently."""
    services = current_app.extensions["bindery"]
    problems = []
    try:
        services.redis.ping()
    except redis.RedisError as error:
        return jsonify(status="unavailable", problems=[f"redis: {type(error).__name__}"]), 503
    now = datetime.now(UTC)
    alive = [
        w
        for w in Worker.all(queue=services.dispatcher.queue)
        if w.last_heartbeat and (now - w.last_heartbeat).total_seconds() < HEARTBEAT_STALE
    ]
    if not alive:
        problems.append("no worker has sent a heartbeat in the last 120 s")
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ready", workers=len(alive))


@blueprint.get("/metrics")
@require_token
def prometheus():
    """Prometheus scrapes with the API token (`authorization: {credentials: ...}` in its config)."""
    body, content_type = metrics.exposition(current_app.extensions["bindery"].dispatcher.queue)
    return Response(body, content_type=content_type)
