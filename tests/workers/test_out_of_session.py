"""Out-of-session messages, decided in process: the emulator's own store behind the gateway's
interface, fakeredis, the web app answering the pre-event (`tests/workers/world.py`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.workers.world import SERVICE_SID, Enqueued, World
from workers import job_catalog, keys, metrics, out_of_session, pools, sessions

POOL = "rides"
NUMBERS = ("+14155550101", "+14155550102", "+14155550103")
RIDER, DRIVER, OTHER = "+15551230001", "+15551230002", "+15551230003"


def make_world(mode: str = "reject", **overrides) -> World:
    world = World(settings_overrides={"out_of_session": mode, **overrides})
    pools.put(world.redis, POOL, [pools.make_number(n) for n in NUMBERS])
    return world


@pytest.fixture
def world() -> Iterator[World]:
    world = make_world()
    yield world
    world.close()


def from_web(world: World) -> list[Enqueued]:
    """Move the jobs the web app's pre-event answer put in RQ (fakeredis) to the world's queue,
    where the test runs them."""
    queue = Queue(keys.QUEUE_NAME, connection=world.redis, serializer=JSONSerializer)
    moved = [Enqueued(j.func_name, j.kwargs, j.meta["kind"], j.id, 0) for j in queue.jobs]
    queue.empty()
    world.queue.jobs += moved
    return moved


def run_all(world: World) -> list[dict]:
    """Run every job enqueued until none is left (delayed ones too: time is the test's)."""
    done = []
    from_web(world)
    while world.queue.jobs:
        done += world.run_enqueued()
        world.deliver_all()
        from_web(world)
    return done


def open_trip(world: World, rider: str = RIDER, driver: str = DRIVER, **options) -> dict:
    request = sessions.SessionRequest(
        pool=POOL,
        participants=({"address": rider}, {"address": driver}),
        **options,
    )
    session_id, _ = sessions.open_session(world.rt, request)
    run_all(world)
    session = sessions.get(world.redis, session_id)
    assert session["status"] == "open", session
    return session


def end_trip(world: World, session: dict) -> None:
    world.rest_set_state(session["conversation_sid"], "closed", webhooks=True)
    world.deliver_all()
    run_all(world)
    assert sessions.get(world.redis, session["session_id"])["status"] == "closed"


def proxy_of(session: dict, address: str) -> str:
    return next(p["proxy_address"] for p in session["participants"] if p.get("address") == address)


def counted(pool: str, mode: str) -> float:
    return metrics.OUT_OF_SESSION.labels(pool, mode)._value.get()


# -- the pre-event ---------------------------------------------------------------------------


def test_reject_refuses_the_autocreation_and_counts_it(world):
    before = counted(POOL, "reject")
    outcome = world.receive(RIDER, NUMBERS[0], "hello?")
    assert outcome.rejected_status == 409 and outcome.conversation_sid is None
    assert world.store.list_conversations(SERVICE_SID) == []
    assert from_web(world) == [] and world.queue.jobs == []  # nothing left behind
    assert counted(POOL, "reject") == before + 1


def test_the_answer_names_the_reason_pool_and_mode(world):
    params = {
        "AccountSid": world.settings.twilio_account_sid,
        "EventType": "onConversationAdd",
        "Source": "SMS",
        "MessagingBinding.Address": RIDER,
        "MessagingBinding.ProxyAddress": NUMBERS[1],
        "MessageBody": "hi",
    }
    answer = world.pre_event(params)
    assert answer.status_code == 409
    assert answer.get_json() == {"reason": "out_of_session", "pool": POOL, "mode": "reject"}


def test_a_number_in_no_pool_autocreates_as_before(world):
    sid = world.inbound(RIDER, "+14155559999", "hello?")
    assert sid is not None
    assert from_web(world) == []


def test_a_message_to_an_open_sessions_pair_is_routed_by_twilio_not_refused(world):
    trip = open_trip(world)
    outcome = world.receive(RIDER, proxy_of(trip, RIDER), "on my way")
    assert outcome.conversation_sid == trip["conversation_sid"] and not outcome.created


# -- reopen ----------------------------------------------------------------------------------


@pytest.fixture
def reopening() -> Iterator[World]:
    world = make_world("reopen")
    yield world
    world.close()


def test_reopen_opens_a_session_with_the_same_counterpart_on_the_number_texted(reopening):
    world = reopening
    first = open_trip(world, ttl=3600.0)
    texted = proxy_of(first, RIDER)
    end_trip(world, first)

    outcome = world.receive(RIDER, texted, "I left my umbrella in the car")
    assert outcome.rejected_status == 409  # the autocreation, refused: the pair stays free
    [job] = [j for j in from_web(world) if j.function == job_catalog.OUT_OF_SESSION]
    assert job.kwargs["body"] == "I left my umbrella in the car"
    done = run_all(world)
    reopened = next(d for d in done if d.get("outcome") == "reopened")
    assert reopened["previous_session_id"] == first["session_id"]

    second = sessions.get(world.redis, reopened["session_id"])
    assert second["status"] == "open"
    assert proxy_of(second, RIDER) == texted  # the rider keeps the number they texted
    assert {p.get("address") for p in second["participants"]} == {RIDER, DRIVER}
    assert second["ttl"] == 3600
    messages = world.store.list_messages(SERVICE_SID, second["conversation_sid"])
    assert [(m.author, m.body) for m in messages] == [(RIDER, "I left my umbrella in the car")]
    assert any(d.get("outcome") == "delivered" for d in done)
    # Twilio now routes the rider's next text to the new session itself.
    routed = world.receive(RIDER, texted, "thanks")
    assert routed.conversation_sid == second["conversation_sid"]


def test_two_texts_in_a_row_open_one_session_and_both_are_posted(reopening):
    world = reopening
    first = open_trip(world)
    texted = proxy_of(first, RIDER)
    end_trip(world, first)
    world.receive(RIDER, texted, "hello?")
    world.receive(RIDER, texted, "anyone?")  # before the first one's job ran
    done = run_all(world)
    outcomes = sorted(d["outcome"] for d in done if "session_id" in d and "outcome" in d)
    assert outcomes.count("reopened") == 1 and outcomes.count("in_session") == 1
    [opened] = [d for d in done if d.get("outcome") == "reopened"]
    session = sessions.get(world.redis, opened["session_id"])
    bodies = sorted(
        m.body for m in world.store.list_messages(SERVICE_SID, session["conversation_sid"])
    )
    assert bodies == ["anyone?", "hello?"]


def test_reopen_without_a_previous_session_drops_the_message_with_a_line(reopening, caplog):
    world = reopening
    world.receive(OTHER, NUMBERS[0], "who is this?")
    from_web(world)
    with caplog.at_level("WARNING"):
        [result] = world.run_enqueued()
    assert result["outcome"] == "no_previous_session"
    assert world.queue.jobs == [] and world.store.list_conversations(SERVICE_SID) == []
    assert OTHER not in caplog.text and "+1555*****03" in caplog.text


def test_a_customer_still_in_a_session_who_texts_another_pool_number_is_posted_there(reopening):
    world = reopening
    trip = open_trip(world)
    other_number = next(n for n in NUMBERS if n != proxy_of(trip, RIDER))
    world.receive(RIDER, other_number, "wrong number, same trip")
    done = run_all(world)
    assert done[0]["outcome"] == "in_session" and done[0]["session_id"] == trip["session_id"]
    messages = world.store.list_messages(SERVICE_SID, trip["conversation_sid"])
    assert [m.body for m in messages] == ["wrong number, same trip"]


def test_the_delivery_waits_for_a_session_still_opening(reopening):
    world = reopening
    first = open_trip(world)
    texted = proxy_of(first, RIDER)
    end_trip(world, first)
    world.receive(RIDER, texted, "hi")
    from_web(world)
    [reopened] = world.run_enqueued("out-of-session:reopen")
    assert reopened["outcome"] == "reopened"
    [waiting] = world.run_enqueued("out-of-session:deliver")  # the session's job has not run
    assert waiting["outcome"] == "waiting"
    [again] = [j for j in world.queue.jobs if j.kind == "out-of-session:deliver"]
    assert again.delay == out_of_session.DELIVERY_POLL
    done = run_all(world)
    assert [d["outcome"] for d in done if d.get("outcome") in ("delivered", "waiting")][-1] == (
        "delivered"
    )


def test_a_delivery_run_twice_posts_once(reopening):
    world = reopening
    trip = open_trip(world)
    args = dict(
        session_id=trip["session_id"],
        author=RIDER,
        body="once",
        origin="out-of-session-x",
        since=world.rt.clock.now(),
    )
    assert out_of_session.deliver(world.rt, **args)["outcome"] == "delivered"
    assert out_of_session.deliver(world.rt, **args)["outcome"] == "already_delivered"
    messages = world.store.list_messages(SERVICE_SID, trip["conversation_sid"])
    assert [m.body for m in messages] == ["once"]


# -- callback --------------------------------------------------------------------------------


class App:
    """The app's URL: records what it is sent, answers as told."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.answers: list[int] = []
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/out-of-session"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.received.append((dict(request.headers), request.get_data()))
        status = self.answers.pop(0) if self.answers else 200
        return Response("{}", status, mimetype="application/json")(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app() -> Iterator[App]:
    app = App()
    yield app
    app.stop()


def test_callback_posts_the_app_a_signed_json_body(app):
    world = make_world("callback", out_of_session_url=app.url)
    try:
        first = open_trip(world)
        texted = proxy_of(first, RIDER)
        end_trip(world, first)
        world.receive(RIDER, texted, "can I book again?")
        from_web(world)
        [result] = world.run_enqueued()
        assert result["outcome"] == "called_back" and result["status"] == 200
        [(headers, raw)] = app.received
        body = json.loads(raw)
        assert body == {
            "type": "out_of_session",
            "id": body["id"],
            "pool": POOL,
            "customer": RIDER,
            "pool_number": texted,
            "message": {"body": "can I book again?", "received_at": body["message"]["received_at"]},
            "last_session_id": first["session_id"],
        }
        assert body["message"]["received_at"].endswith("Z")
        assert headers["Idempotency-Key"] == body["id"]
        assert headers["X-Bindery-Signature"] == out_of_session.signature(
            world.settings.api_token, raw
        )
        assert world.store.list_conversations(SERVICE_SID, state="active") == []
        # The app opens the session, the rider on the number they texted: it is free.
        session = open_trip(world, rider=RIDER, driver=DRIVER)
        assert session["status"] == "open"
    finally:
        world.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, out_of_session.CallbackUnanswered),
        (503, out_of_session.CallbackUnanswered),
        (429, out_of_session.CallbackUnanswered),
        (408, out_of_session.CallbackUnanswered),
        (400, out_of_session.CallbackRefused),
        (404, out_of_session.CallbackRefused),
    ],
)
def test_the_callbacks_answer_decides_retry_or_fail(app, status, error):
    from workers.errors import Permanent, Retryable

    world = make_world("callback", out_of_session_url=app.url)
    try:
        app.answers = [status]
        payload = out_of_session.callback_body("j1", POOL, RIDER, NUMBERS[0], "hi", 0.0)
        with pytest.raises(error):
            out_of_session.post_callback(world.rt, payload, "j1")
        assert issubclass(error, Retryable if status in (408, 429) or status >= 500 else Permanent)
    finally:
        world.close()


def test_no_answer_from_the_app_is_retried():
    world = make_world("callback", out_of_session_url="http://127.0.0.1:9/nobody")
    try:
        payload = out_of_session.callback_body("j1", POOL, RIDER, NUMBERS[0], "hi", 0.0)
        with pytest.raises(out_of_session.CallbackUnanswered):
            out_of_session.post_callback(world.rt, payload, "j1")
    finally:
        world.close()


def test_a_session_the_app_opened_meanwhile_gets_the_message(reopening):
    """The reopen's session is recorded, then the app opens its own for the rider on the same
    number, and the app's job runs first: the reopen's session fails (the pair is taken), and the
    message goes to the app's session instead of being dropped."""
    world = reopening
    first = open_trip(world)
    texted = proxy_of(first, RIDER)
    end_trip(world, first)
    world.receive(RIDER, texted, "still there?")
    from_web(world)
    [reopened] = world.run_enqueued("out-of-session:reopen")
    assert reopened["outcome"] == "reopened"
    mine, _ = sessions.open_session(
        world.rt,
        sessions.SessionRequest(
            pool=POOL,
            participants=({"address": RIDER, "proxy_address": texted}, {"address": OTHER}),
        ),
    )
    app_job = [j for j in world.queue.jobs if j.kwargs.get("session_id") == mine]
    world.queue.jobs = app_job + [j for j in world.queue.jobs if j not in app_job]
    done = run_all(world)
    assert sessions.get(world.redis, mine)["status"] == "open"
    assert sessions.get(world.redis, reopened["session_id"])["status"] == "failed"
    assert any(d.get("outcome") == "redirected" for d in done)
    conversation = sessions.get(world.redis, mine)["conversation_sid"]
    messages = world.store.list_messages(SERVICE_SID, conversation)
    assert [(m.author, m.body) for m in messages] == [(RIDER, "still there?")]


def test_a_text_to_the_number_reserved_for_a_session_being_opened_is_refused_and_posted(reopening):
    """Between the reservation of (rider, number) and the session's add, the rider texts that
    number: the autocreation is refused (no conversation takes the pair from the session), the
    session keeps the number, and the message is posted into it once it is open."""
    world = reopening
    world.redis.set(keys.customer_sticky(POOL, RIDER), NUMBERS[0])
    session_id, _ = sessions.open_session(
        world.rt,
        sessions.SessionRequest(pool=POOL, participants=({"address": RIDER}, {"address": DRIVER})),
    )
    job = world.queue.take("session-open")[0]
    task = world.start("opening", lambda: sessions.run_opening(world.rt, **job.kwargs))
    task.run_until("twilio:conversation.create")
    outcome = world.receive(RIDER, NUMBERS[0], "where are you?")
    assert outcome.rejected_status == 409 and outcome.conversation_sid is None
    assert task.finish()["outcome"] == "open"
    session = sessions.get(world.redis, session_id)
    assert proxy_of(session, RIDER) == NUMBERS[0]
    done = run_all(world)
    assert any(d.get("outcome") == "in_session" for d in done)
    messages = world.store.list_messages(SERVICE_SID, session["conversation_sid"])
    assert [(m.author, m.body) for m in messages] == [(RIDER, "where are you?")]
