"""The Flask application factory. Nothing is built at import time."""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException

from workers import keys
from workers.runtime import Runtime, connect
from workers.settings import Settings

MAX_BODY = 64 * 1024

log = logging.getLogger(__name__)


class Services:
    """What the views share, built once per process and kept in `app.extensions["bindery"]`."""

    def __init__(self, settings: Settings, connection: redis.Redis):
        self.settings = settings
        self.redis = connection
        # The web side uses the runtime's Redis-backed parts; it calls Twilio only when an operator
        # asks the console for Twilio's view of a conversation.
        self.runtime = Runtime(settings, connection)
        self.ledger = self.runtime.ledger
        self.dispatcher = self.runtime.dispatcher
        self.validator = RequestValidator(settings.twilio_auth_token)

    def count(self, field: str) -> None:
        """Best effort: a counter must never turn an accepted webhook into an error."""
        try:
            self.redis.hincrby(keys.webhook_counters(), field, 1)
        except redis.RedisError:
            log.warning("could not count %s: Redis unreachable", field)


def create_app(settings: Settings | None = None, connection: redis.Redis | None = None) -> Flask:
    settings = settings or Settings.from_env()
    if not settings.development:
        settings.require("TWILIO_AUTH_TOKEN", "BINDERY_API_TOKEN")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY
    app.config["BINDERY_SETTINGS"] = settings
    app.extensions["bindery"] = Services(settings, connection or connect(settings.redis_url))

    from webhooks import api, conversations, health, ops

    app.register_blueprint(conversations.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    ops.init_app(app, settings)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify(error=error.description or error.name), error.code

    @app.errorhandler(redis.RedisError)
    def redis_down(error: redis.RedisError):
        log.error("Redis unavailable: %s", type(error).__name__)
        return jsonify(error="storage unavailable, retry later"), 503

    return app
