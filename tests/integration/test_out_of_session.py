"""Out-of-session messages end to end: a customer texts a pool number through the emulator's
inbound SMS after their session ended (closed by Twilio's own timer), and each mode of
BINDERY_OUT_OF_SESSION does what it says, on the real stack (gunicorn, RQ workers, Redis, the
emulator sending signed webhooks)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time

import pytest
import requests
from rq import Queue
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from devstack.stack import WEBHOOK_FILTERS
from emulator.defaults import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.integration.conftest import new_number
from tests.integration.stack import API_TOKEN, Stack
from workers import sessions
from workers.twilio_http import make_client

pytestmark = pytest.mark.integration

POOL = "rides"


class App:
    """The app's out-of-session URL: records each callback, answers 500 first, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.answers = [500]
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/oos"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        status = self.answers.pop(0) if self.answers else 200
        return Response("{}", status, mimetype="application/json")(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=["reject", "reopen", "callback"])
def mode_stack(request):
    app = App()
    stack = Stack(
        BINDERY_OUT_OF_SESSION=request.param,
        BINDERY_OUT_OF_SESSION_URL=app.url,
        BINDERY_MAX_RETRIES="3",
    )
    yield request.param, stack, app
    stack.stop()
    app.stop()


def api(stack: Stack, method: str, path: str, **kwargs) -> requests.Response:
    return stack.api.request(method, f"{stack.web_url}/api/v1/{path}", timeout=10, **kwargs)


def wait_session(stack: Stack, session_id: str, statuses=("open", "failed"), timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = api(stack, "get", f"sessions/{session_id}").json()
        if answer.get("status") in statuses:
            return answer
        assert time.monotonic() < deadline, (answer, stack.workers.output()[-3000:])
        time.sleep(0.2)


def inbound(stack: Stack, sender: str, to: str, body: str) -> requests.Response:
    """A customer's SMS, as the emulator's admin endpoint delivers it."""
    return requests.post(
        f"{stack.emulator_url}/_emulator/inbound",
        json={"from": sender, "to": to, "body": body},
        timeout=30,
    )


def until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def proxy_of(session: dict, address: str) -> str:
    return next(p["proxy_address"] for p in session["participants"] if p.get("address") == address)


@pytest.fixture
def ended_trip(mode_stack):
    """A pool, a trip (rider and driver) opened through the API with a ttl, and Twilio's own
    timer closing it; the rider's proxy is free again."""
    _, stack, _ = mode_stack
    stack.reset()
    twilio = make_client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, base_url=stack.emulator_url)
    twilio.conversations.v1.configuration.webhooks().update(
        pre_webhook_url=f"{stack.web_url}/twilio/conversations/pre",
        post_webhook_url=f"{stack.web_url}/twilio/conversations/post",
        filters=WEBHOOK_FILTERS,
        method="POST",
    )
    numbers = [new_number() for _ in range(3)]
    for number in numbers:
        twilio.conversations.v1.address_configurations.create(
            type="sms", address=number, auto_creation_enabled=True
        )
    answer = api(stack, "put", f"pools/{POOL}", json={"numbers": [{"number": n} for n in numbers]})
    assert answer.status_code in (200, 201), answer.text
    rider, driver = new_number(), new_number()
    created = api(
        stack,
        "post",
        "sessions",
        json={
            "pool": POOL,
            "participants": [{"address": rider}, {"address": driver}],
            "ttl": "10m",
        },
    )
    assert created.status_code == 202, created.text
    trip = wait_session(stack, created.json()["session_id"])
    assert trip["status"] == "open", trip
    stack.emulator_post("clock", {"advance_seconds": 601})  # Twilio's timer closes it
    wait_session(stack, trip["session_id"], statuses=("closed",))
    return stack, twilio, trip, rider, driver


def test_out_of_session_message(mode_stack, ended_trip):
    mode, _, app = mode_stack
    stack, twilio, trip, rider, driver = ended_trip
    texted = proxy_of(trip, rider)
    conversations_before = {c.sid for c in twilio.conversations.v1.conversations.list()}

    answer = inbound(stack, rider, texted, "I left my umbrella in the car")
    # Every mode refuses the autocreation: Twilio's pre-event answer is a 4xx.
    assert answer.status_code == 403, answer.text
    assert answer.json()["rejected_by"] == "onConversationAdd"

    if mode == "reject":
        time.sleep(1)
        queue = Queue("bindery", connection=stack.redis)
        until(lambda: queue.count + queue.started_job_registry.count == 0, "the queue drained")
        # (a session with a ttl keeps a delayed check scheduled: not waited for)
        latest = sessions.latest_for(stack.redis, POOL, rider)
        assert latest["session_id"] == trip["session_id"]  # no new session
        metrics = stack.api.get(f"{stack.web_url}/metrics", timeout=10).text
        [line] = [m for m in metrics.splitlines() if m.startswith("bindery_out_of_session_total")]
        assert f'pool="{POOL}"' in line and 'mode="reject"' in line and line.endswith(" 1.0")
    elif mode == "reopen":
        reopened = until(
            lambda: (
                (s := sessions.latest_for(stack.redis, POOL, rider))
                and s["session_id"] != trip["session_id"]
                and s
            ),
            "a new session for the rider",
        )
        session = wait_session(stack, reopened["session_id"])
        assert session["status"] == "open", session
        assert proxy_of(session, rider) == texted  # the rider keeps the number they texted
        assert {p.get("address") for p in session["participants"]} == {rider, driver}
        conversation = twilio.conversations.v1.conversations(session["conversation_sid"])
        messages = until(lambda: conversation.messages.list(), "the rider's message, posted")
        assert [(m.author, m.body) for m in messages] == [(rider, "I left my umbrella in the car")]
        # The rider's next text reaches the new session through Twilio's own routing.
        routed = inbound(stack, rider, texted, "thanks").json()
        assert routed["conversation_sid"] == session["conversation_sid"]
    else:
        until(lambda: len(app.received) >= 2, "the callback, retried after a 500", timeout=60)
        (first_headers, first), (headers, raw) = app.received[:2]
        assert first == raw and first_headers["Idempotency-Key"] == headers["Idempotency-Key"]
        body = json.loads(raw)
        assert body["type"] == "out_of_session" and body["pool"] == POOL
        assert (body["customer"], body["pool_number"]) == (rider, texted)
        assert body["message"]["body"] == "I left my umbrella in the car"
        assert body["last_session_id"] == trip["session_id"]
        digest = hmac.new(API_TOKEN.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Bindery-Signature"] == f"sha256={digest}"
        # The app opens the session itself, the rider on the number they texted.
        created = api(
            stack,
            "post",
            "sessions",
            json={
                "pool": POOL,
                "participants": [{"address": rider, "proxy_address": texted}, {"address": driver}],
            },
        )
        session = wait_session(stack, created.json()["session_id"])
        assert session["status"] == "open" and proxy_of(session, rider) == texted

    new = {c.sid for c in twilio.conversations.v1.conversations.list()} - conversations_before
    assert len(new) == (0 if mode == "reject" else 1)  # never an autocreated one
    errors = stack.emulator_stats()["errors"]
    assert sum(errors.get(code, 0) for code in ("50416", "50437", "50433")) == 0
