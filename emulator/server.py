"""Serving the emulator over HTTP with werkzeug's threaded server (one thread per connection).

`serve()` blocks (the CLI); `start_in_thread()` answers at once with a `RunningEmulator` whose
`.url` clients point at and whose `.shutdown()` stops it (tests).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any
from urllib.parse import unquote

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.defaults import DEFAULT_HOST
from emulator.engine import Engine

access_log = logging.getLogger("emulator.access")


class _RequestHandler(WSGIRequestHandler):
    """Leaves the `Date` header to the app, which stamps it with the emulator's clock, and logs
    each request as one record of `emulator.access`."""

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path unquoted (`Address=+1555...`, not `%2B1555...`), so the process's log filter
        # finds the phone numbers in it and masks them.
        access_log.info(
            "%s %s %s %s",
            self.address_string(),
            getattr(self, "command", None) or "-",
            unquote(getattr(self, "path", None) or "-"),
            code,
        )


class _QuietRequestHandler(_RequestHandler):
    """No access log line per request (tests make thousands)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class RunningEmulator:
    """A served emulator: its base URL, credentials, app and engine."""

    url: str
    host: str
    port: int
    app: Flask
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        return self.app.extensions["emulator"]

    @property
    def config(self) -> EmulatorConfig:
        return self.engine.config

    @property
    def account_sid(self) -> str:
        return self.config.account_sid

    @property
    def auth_token(self) -> str:
        return self.config.auth_token

    @property
    def default_service_sid(self) -> str:
        return self.config.service_sid

    def shutdown(self) -> None:
        """Stop serving, close the socket and stop the background threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        self.engine.stop()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *_: Any) -> None:
        self.shutdown()


def _bind(
    config: EmulatorConfig | None, host: str, port: int, log_requests: bool
) -> RunningEmulator:
    app = create_app(config)
    handler = _RequestHandler if log_requests else _QuietRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    bound_port = server.server_port
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in url_host:
        url_host = "[::1]" if url_host == "::" else f"[{url_host}]"
    return RunningEmulator(f"http://{url_host}:{bound_port}", host, bound_port, app, server)


def start_in_thread(
    config: EmulatorConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log_requests: bool = False,
) -> RunningEmulator:
    """Serve in a daemon thread; port 0 picks a free port (read it from `.url` or `.port`)."""
    running = _bind(config, host, port, log_requests)
    running.engine.start()
    thread = threading.Thread(
        target=running._server.serve_forever,
        kwargs={"poll_interval": 0.1},  # how long shutdown() may wait
        name="emulator-server",
        daemon=True,
    )
    thread.start()
    running._thread = thread
    return running


def serve(
    config: EmulatorConfig | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log_requests: bool = True,
    ready: Callable[[RunningEmulator], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; `ready` is called once the socket is bound."""
    running = _bind(config, host, port, log_requests)
    running.engine.start()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Process managers stop with SIGTERM (and background jobs ignore SIGINT): both end
        # serve_forever the same way.
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if ready is not None:
            ready(running)
        running._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.shutdown()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
