"""Fixtures of the emulator tests: one emulator per session (reset before every test), the
official twilio client pointed at it through the project's adapter, a webhook receiver, and a
check of every 2xx answer the client received against Twilio's contract
(`emulator/contract/conversations_v1.json`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from emulator import EmulatorConfig, RunningEmulator, start_in_thread
from emulator.contract import Contract
from workers.twilio_http import BinderyHttpClient

# Webhook timeout of the session's emulator: short, so the "no answer" test stays quick.
WEBHOOK_TIMEOUT = 1.0


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


# -- the emulator ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def emulator() -> Iterator[RunningEmulator]:
    # timer_tick=0: timers fire only when a test moves the clock, so tests are deterministic.
    running = start_in_thread(EmulatorConfig(webhook_timeout=WEBHOOK_TIMEOUT, timer_tick=0))
    yield running
    running.shutdown()


class Admin:
    """The /_emulator endpoints, over HTTP."""

    def __init__(self, url: str) -> None:
        self.base = url + "/_emulator"
        self.session = requests.Session()

    def get(self, path: str) -> Any:
        response = self.session.get(f"{self.base}/{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.session.post(f"{self.base}/{path}", json=body or {}, timeout=10)

    def stats(self) -> dict[str, Any]:
        return self.get("stats")

    def faults(self, **faults: Any) -> dict[str, Any]:
        response = self.post("faults", faults)
        response.raise_for_status()
        return response.json()

    def advance(self, seconds: float) -> dict[str, Any]:
        response = self.post("clock", {"advance_seconds": seconds})
        response.raise_for_status()
        return response.json()

    def inbound(self, sender: str, to: str, body: str = "hi") -> requests.Response:
        return self.post("inbound", {"from": sender, "to": to, "body": body})

    def flush(self) -> None:
        assert self.post("webhooks/flush", {"timeout_seconds": 10}).json() == {"flushed": True}


@pytest.fixture(scope="session")
def admin_session(emulator: RunningEmulator) -> Iterator[Admin]:
    admin = Admin(emulator.url)
    yield admin
    admin.session.close()


@pytest.fixture(autouse=True)
def admin(admin_session: Admin) -> Admin:
    """Every test starts from a reset emulator."""
    admin_session.post("reset").raise_for_status()
    return admin_session


@pytest.fixture
def raw(emulator: RunningEmulator) -> Iterator[requests.Session]:
    """Plain HTTP with the emulator's credentials, for what the SDK cannot send."""
    with requests.Session() as session:
        session.auth = (emulator.account_sid, emulator.auth_token)
        yield session


# -- the official client, recording what it receives ---------------------------------------------


@dataclass
class Exchange:
    method: str
    url: str
    """As the SDK asked for it, on https://conversations.twilio.com."""
    params: dict[str, Any]
    status: int
    body: str
    content_type: str


class RecordingHttpClient(BinderyHttpClient):
    """The project's adapter, keeping every exchange so tests can validate the answers."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout=10)
        self.exchanges: list[Exchange] = []

    def request(self, method, url, params=None, data=None, *args, **kwargs):
        response = super().request(method, url, params, data, *args, **kwargs)
        self.exchanges.append(
            Exchange(
                method.upper(),
                url,
                dict(params or {}),
                response.status_code,
                response.text,
                response.headers.get("Content-Type", ""),
            )
        )
        return response


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract.load()


def validate_exchanges(contract: Contract, exchanges: list[Exchange]) -> int:
    """Check every 2xx JSON answer against Twilio's contract; returns how many were checked."""
    failures, validated = [], 0
    for exchange in exchanges:
        if not 200 <= exchange.status < 300 or not exchange.body:
            continue
        body = json.loads(exchange.body) if "json" in exchange.content_type else exchange.body
        path = urlsplit(exchange.url).path
        problems = contract.violations(exchange.method, path, exchange.status, body)
        if problems:
            failures.append(f"{exchange.method} {exchange.url}: " + "; ".join(problems))
        else:
            validated += 1
    assert not failures, "answers that break Twilio's contract:\n" + "\n".join(failures)
    return validated


@pytest.fixture
def http_client(emulator: RunningEmulator, contract: Contract) -> Iterator[RecordingHttpClient]:
    http = RecordingHttpClient(emulator.url)
    yield http
    http.session.close()
    validate_exchanges(contract, http.exchanges)


@pytest.fixture
def validate_answers(contract: Contract, http_client: RecordingHttpClient) -> Callable[[], int]:
    """Check the answers the client got so far; returns how many 2xx bodies passed."""
    return lambda: validate_exchanges(contract, http_client.exchanges)


@pytest.fixture
def client(emulator: RunningEmulator, http_client: RecordingHttpClient) -> Client:
    """The official client on the emulator; every 2xx body it gets is validated at teardown."""
    return Client(emulator.account_sid, emulator.auth_token, http_client=http_client)


@pytest.fixture
def conversations(client: Client) -> Any:
    return client.conversations.v1


# -- a webhook receiver ----------------------------------------------------------------------------


@dataclass
class Hook:
    method: str
    path: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool

    @property
    def event_type(self) -> str:
        return self.params.get("EventType", "")


@dataclass
class Receiver:
    """Records signed webhooks; answers per event type (`answers`), after an optional delay."""

    auth_token: str
    url: str = ""
    hooks: list[Hook] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pre_url(self) -> str:
        return self.url + "/pre"

    @property
    def post_url(self) -> str:
        return self.url + "/post"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        # Twilio signs the URL it requested: validate the raw one, not werkzeug's re-quoted
        # `request.url`.
        url = f"{request.host_url.rstrip('/')}{environ['RAW_URI']}"
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = RequestValidator(self.auth_token)
        if request.method == "POST":
            params = request.form.to_dict()
            valid = validator.validate(url, request.form, signature)
        else:
            params = request.args.to_dict()
            valid = validator.validate(url, {}, signature)
        hook = Hook(request.method, request.path, url, params, dict(request.headers), valid)
        with self._lock:
            self.hooks.append(hook)
        time.sleep(self.delays.get(hook.event_type, 0))
        status = self.answers.get(hook.event_type, 200)
        body = json.dumps(self.bodies.get(hook.event_type, {}))
        return Response(body, status, mimetype="application/json")(environ, start_response)

    def events(self, path: str | None = None) -> list[str]:
        with self._lock:
            return [h.event_type for h in self.hooks if path is None or h.path == path]

    def wait_for(self, count: int, path: str = "/post", timeout: float = 5.0) -> list[Hook]:
        """The first `count` hooks on `path`, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [h for h in self.hooks if h.path == path]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"expected {count} hooks on {path}, got {self.events(path)}")


@pytest.fixture
def receiver(emulator: RunningEmulator) -> Iterator[Receiver]:
    receiver = Receiver(emulator.auth_token)
    server = make_server("127.0.0.1", 0, receiver, threaded=True, request_handler=_Quiet)
    receiver.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# -- small helpers shared by the tests -------------------------------------------------------------


@pytest.fixture
def configure_webhooks(conversations: Any, emulator: RunningEmulator, receiver: Receiver):
    """Point the default service's webhooks at the receiver, for the given event names."""

    def configure(*filters: str, method: str = "POST", pre: bool = True) -> None:
        conversations.services(emulator.default_service_sid).configuration.webhooks().update(
            pre_webhook_url=receiver.pre_url if pre else None,
            post_webhook_url=receiver.post_url,
            filters=list(filters),
            method=method,
        )

    return configure
