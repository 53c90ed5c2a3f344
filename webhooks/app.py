"""The Flask application factory. Nothing is built at import time."""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException

from workers import keys, metrics
from workers.runtime import Runtime, connect
from workers.settings import Settings
from workers.twilio_clock import PublishedTwilioClock

MAX_BODY = 64 * 1024
PRE_EVENT_REDIS_TIMEOUT = 2.0
"""Seconds a pre-event waits for Redis before it fails open (Twilio waits 5 s for the answer)."""

log = logging.getLogger(__name__)


class Services:
    """What the views share, built once per process and kept in `app.extensions["bindery"]`."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        pre_event_connection: redis.Redis,
        clock=None,
    ):
        self.settings = settings
        self.redis = connection
        # The web side reads Twilio's clock as the workers publish it, and calls Twilio only when
        # an operator asks the console for Twilio's view of a conversation.
        self.runtime = Runtime.build(
            settings,
            connection,
            clock=clock or PublishedTwilioClock(connection),
            calls_twilio=bool(settings.twilio_account_sid and settings.twilio_auth_token),
        )
        # Pre-events answer within Twilio's budget, so they have a client with a short timeout.
        self.pre_event_runtime = Runtime.build(
            settings,
            pre_event_connection,
            clock=self.runtime.clock,
            calls_twilio=False,
        )
        self.ledger = self.runtime.ledger
        self.queue = self.runtime.queue
        self.validator = RequestValidator(settings.twilio_auth_token)

    def count(self, field: str) -> None:
        """Best effort: a counter must never turn an accepted webhook into an error."""
        try:
            self.redis.hincrby(keys.webhook_counters(), field, 1)
        except redis.RedisError:
            log.warning("could not count %s: Redis unreachable", field)


def create_app(
    settings: Settings | None = None, connection: redis.Redis | None = None, clock=None
) -> Flask:
    """The app. Called with no settings, as gunicorn calls `webhooks:create_app()`, it is the
    process's entry point: settings from the environment, and the host's shared metrics.
    `connection` and `clock` (Twilio's, as the workers publish it) are built from the settings
    unless a test gives its own."""
    if settings is None:
        metrics.setup()
    settings = settings or Settings.from_env()
    if not settings.development:
        settings.require("TWILIO_AUTH_TOKEN", "BINDERY_API_TOKEN")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY
    app.config["BINDERY_SETTINGS"] = settings
    if connection is None:
        connection = connect(settings.redis_url)
        pre_event_connection = connect(settings.redis_url, socket_timeout=PRE_EVENT_REDIS_TIMEOUT)
    else:
        pre_event_connection = connection
    app.extensions["bindery"] = Services(settings, connection, pre_event_connection, clock)

    from webhooks import api, conversations, health, ops, sessions_api

    app.register_blueprint(conversations.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(sessions_api.blueprint)
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
