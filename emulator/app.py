"""The emulator's Flask application factory: `create_app(config)`.

Every /v1 request is counted, authenticated (HTTP Basic with the account SID and auth token),
admitted by the concurrency limit, exposed to injected faults and latency, and only then routed.
Latency is served here, before any view touches the store, so it never holds the store lock.
Every error answer is Twilio's JSON and is counted by its code.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from emulator import admin, api
from emulator.config import EmulatorConfig
from emulator.engine import Engine
from emulator.errors import (
    AuthenticationFailed,
    InternalServerError,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    TwilioError,
)

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator"


def create_app(config: EmulatorConfig | None = None) -> Flask:
    """A new emulator app with its own state; its Engine is in `app.extensions["emulator"]`."""
    config = config or EmulatorConfig()
    app = Flask(__name__)
    app.config["EMULATOR"] = config
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Twilio's field order
    engine = Engine(config)
    app.extensions["emulator"] = engine
    app.register_blueprint(api.blueprint)
    app.register_blueprint(admin.blueprint)

    @app.before_request
    def admit() -> None:
        if request.path.startswith(ADMIN_PREFIX):
            return
        engine.stats.request()
        operation = api.OPERATIONS.get(request.endpoint or "")
        if operation:
            engine.stats.call(operation)
        if not request.path.startswith("/v1/") and request.path != "/v1":
            return
        _authenticate(config)
        engine.limits.enter()
        g.admitted = True
        latency = engine.limits.inject(is_write=request.method in ("POST", "DELETE"))
        if latency:
            time.sleep(latency)

    @app.after_request
    def stamp(response: Response) -> Response:
        # Twilio's clock is the emulator's: clients measure idleness by this header.
        response.headers["Date"] = http_date(engine.clock.now())
        return response

    @app.teardown_request
    def release(_: BaseException | None) -> None:
        if g.pop("admitted", False):
            engine.limits.leave()

    @app.errorhandler(TwilioError)
    def twilio_error(error: TwilioError) -> Response:
        return error_response(engine, error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.code == 404:
            return error_response(
                engine, NotFound(f"The requested resource {request.path} was not found")
            )
        if error.code == 405:
            return error_response(engine, MethodNotAllowed())
        if error.code == 400:
            return error_response(engine, InvalidParameter(error.description))
        return error_response(engine, InternalServerError(error.description))

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(engine, InternalServerError())

    return app


def _authenticate(config: EmulatorConfig) -> None:
    auth = request.authorization
    username = (auth.username or "") if auth else ""
    password = (auth.password or "") if auth else ""
    valid_user = hmac.compare_digest(username.encode(), config.account_sid.encode())
    valid_password = hmac.compare_digest(password.encode(), config.auth_token.encode())
    if not (auth and auth.type == "basic" and valid_user and valid_password):
        raise AuthenticationFailed()


def error_response(engine: Engine, error: TwilioError) -> Response:
    """Twilio's error JSON for `error`, counted in the stats by its code."""
    engine.stats.error(error.code)
    response = jsonify(error.body())
    response.status_code = error.status
    if isinstance(error, AuthenticationFailed):
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response
