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
    """Ready when Redis answers, keeps what it is given (no eviction policy: an evicted job or lock
    is a lost operation), and at least one worker has sent a heartbeat recently."""
    services = current_app.extensions["bindery"]
    problems = []
    try:
        services.redis.ping()
    except redis.RedisError as error:
        return jsonify(status="unavailable", problems=[f"redis: {type(error).__name__}"]), 503
    policy = _eviction_policy(services.redis)
    if policy not in ("noeviction", None):
        problems.append(
            f"redis: maxmemory-policy is {policy}; it would evict jobs and locks "
            "(set maxmemory-policy noeviction)"
        )
    now = datetime.now(UTC)
    alive = [
        w
        for w in Worker.all(queue=services.queue.rq)
        if w.last_heartbeat and (now - w.last_heartbeat).total_seconds() < HEARTBEAT_STALE
    ]
    if not alive:
        problems.append("no worker has sent a heartbeat in the last 120 s")
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ready", workers=len(alive))


def _eviction_policy(connection: redis.Redis) -> str | None:
    """Redis's maxmemory-policy, or None where CONFIG is not allowed (some managed services):
    then it cannot be checked here, and the deploy notes say what to set."""
    try:
        value = connection.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.RedisError:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return value or None


@blueprint.get("/metrics")
@require_token
def prometheus():
    """Prometheus scrapes with the API token (`authorization: {credentials: ...}` in its config)."""
    body, content_type = metrics.exposition(current_app.extensions["bindery"].queue.rq)
    return Response(body, content_type=content_type)
