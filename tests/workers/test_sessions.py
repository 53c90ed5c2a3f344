"""Sessions, decided in-process: opened through the same participant-add as every add, idempotent,
never a duplicate binding (a pair held in Twilio behind Bindery's back is found and another number
given), failing cleanly when a pool is exhausted, following their conversation to the end (a DELETE,
Twilio's timer, a post-event), and a job killed mid-way picked up by its retry."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tests.workers.world import World
from workers import allocation, errors, keys, pools, sessions
from workers.sessions import SessionRequest

C1, C2, C3 = "+15551230001", "+15551230002", "+15551230003"
P1, P2 = "+15550000001", "+15550000002"


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def pool(world: World, *numbers: str, name: str = "default") -> None:
    pools.put(world.redis, name, [pools.make_number(n) for n in numbers])


def request(*participants, **options) -> SessionRequest:
    body = {"pool": "default", "participants": [_participant(p) for p in participants], **options}
    return SessionRequest.from_body(body)


def _participant(p):
    if isinstance(p, dict):
        return p
    return {"address": p} if p.startswith(("+", "whatsapp:")) else {"identity": p}


def open_(world: World, *participants, **options) -> dict:
    session_id, _ = sessions.open_session(world.rt, request(*participants, **options))
    world.run_enqueued("session-open")
    return sessions.get(world.redis, session_id)


def twilio_pairs(world: World, conversation: str) -> set[tuple[str, str]]:
    return {
        (p.binding.address, p.binding.proxy_address)
        for p in world.participants(conversation)
        if p.binding is not None and p.binding.proxy_address
    }


def duplicates(world: World) -> int:
    return sum(world.twilio.errors[c] for c in (50416, 50437, 50433))


def test_a_session_opens_with_each_customer_given_a_proxy_of_the_pool(world):
    pool(world, P1, P2)
    session = open_(world, C1, C2, "agent-7", ttl="2h")
    assert session["status"] == "open" and session["error"] is None
    conversation = session["conversation_sid"]
    given = {(p["address"], p["proxy_address"]) for p in session["participants"] if "address" in p}
    assert {a for a, _ in given} == {C1, C2}
    assert all(proxy in (P1, P2) for _, proxy in given)
    assert twilio_pairs(world, conversation) == given
    assert all(p["participant_sid"].startswith("MB") for p in session["participants"])
    held = world.store.get_conversation(world.twilio.service_sid, conversation)
    assert held.unique_name == "bindery-" + session["session_id"]
    assert held.date_closed is not None  # Twilio's own timer closes it
    assert pools.sessions_using(world.redis, P1) | pools.sessions_using(world.redis, P2) == {
        session["session_id"]
    }
    assert not world.redis.keys("bindery:reservation:*")  # the ledger holds the pairs now


def test_a_second_request_with_the_unique_name_gets_the_first_session(world):
    pool(world, P1, P2)
    first = sessions.start(world.rt, request(C1, C2, unique_name="trip-42"))
    second = sessions.start(world.rt, request(C1, C3, unique_name="trip-42"))
    assert second.session_id == first.session_id and second.duplicate
    assert len(world.queue.jobs) == 1
    world.run_enqueued()
    again = sessions.start(world.rt, request(C1, C2, unique_name="trip-42"))
    assert again.duplicate and not world.queue.jobs  # open: nothing to enqueue
    by_key = sessions.start(world.rt, request(C1, C2, idempotency_key="k-1"))
    assert sessions.start(world.rt, request(C1, C2, idempotency_key="k-1")) == sessions.Opened(
        by_key.session_id, by_key.job_id, True
    )


def test_concurrent_sessions_of_one_customer_never_share_a_pair(world):
    """Many sessions of the same customer, their jobs interleaved step by step: every open
    session's pairs are distinct, Twilio never answers a duplicate, and the one too many fails."""
    pool(world, P1, P2)
    ids = [sessions.open_session(world.rt, request(C1, f"+1555123100{i}"))[0] for i in range(3)]
    jobs = world.queue.take("session-open")
    tasks = [
        world.start(job.job_id, lambda job=job: sessions.run_opening(world.rt, **job.kwargs))
        for job in jobs
    ]
    while not all(t.done for t in tasks):
        for task in tasks:
            task.advance()
    assert all(t.error is None for t in tasks), [t.error for t in tasks]
    found = [sessions.get(world.redis, i) for i in ids]
    opened = [s for s in found if s["status"] == "open"]
    assert len(opened) == 2 and [s["status"] for s in found].count("failed") == 1
    pairs = [(p["address"], p["proxy_address"]) for s in opened for p in s["participants"]]
    assert len(pairs) == len(set(pairs))
    assert duplicates(world) == 0


def test_a_pair_held_in_twilio_behind_bindery_s_back_is_found_and_another_number_given(world):
    """The verifying ledger mode: the ledger has never seen (C1, P1), which an app bound through
    the REST API without webhooks. The session's add asks Twilio under the pair's lock, finds it,
    and the customer is given P2: no 50416."""
    pool(world, P1, P2)
    elsewhere = world.conversation()
    world.rest_add(elsewhere, address=C1, proxy_address=P1)
    world.redis.set(keys.customer_sticky("default", C1), P1)  # so that P1 is tried first
    session = open_(world, C1, C2)
    assert session["status"] == "open"
    mine = next(p for p in session["participants"] if p["address"] == C1)
    assert mine["proxy_address"] == P2
    assert duplicates(world) == 0
    assert world.rt.ledger.pair(keys.pair_id(C1, P1)).holder == elsewhere


def test_an_exhausted_pool_fails_the_session_with_the_customer_masked_and_the_pool(world):
    pool(world, P1)
    open_(world, C1, C2)
    before = REGISTRY.get_sample_value("bindery_pool_exhausted_total", {"pool": "default"}) or 0
    creates = world.twilio.calls["conversation.create"]
    failed = open_(world, C1, C3)
    assert failed["status"] == "failed" and failed["error_code"] == 80206
    assert "+1555*****01" in failed["error"] and "pool default" in failed["error"]
    assert C1 not in failed["error"]
    assert world.twilio.calls["conversation.create"] == creates  # found before creating anything
    after = REGISTRY.get_sample_value("bindery_pool_exhausted_total", {"pool": "default"})
    assert after == before + 1
    assert pools.sessions_using(world.redis, P1) != set() and not world.redis.keys(
        "bindery:reservation:*"
    )
    assert failed["session_id"] not in pools.sessions_using(world.redis, P1)


def test_a_fixed_proxy_held_in_twilio_fails_the_session_and_closes_its_conversation(world):
    pool(world, P1, P2)
    elsewhere = world.conversation()
    world.rest_add(elsewhere, address=C1, proxy_address=P1)
    failed = open_(world, {"address": C1, "proxy_address": P1}, C2)
    assert failed["status"] == "failed"
    assert failed["error_code"] == errors.PAIR_HELD_ELSEWHERE
    assert world.state(failed["conversation_sid"]) == "closed"
    assert duplicates(world) == 0
    assert pools.sessions_using(world.redis, P1) == set()
    assert pools.sessions_using(world.redis, P2) == set()  # C2's number was let go too


def test_a_fixed_proxy_is_given_when_free(world):
    pool(world, P1, P2)
    session = open_(world, {"address": C1, "proxy_address": P2}, C2)
    assert session["status"] == "open"
    assert session["participants"][0]["proxy_address"] == P2


def test_delete_closes_the_conversation_and_frees_the_pairs(world):
    pool(world, P1)
    session = open_(world, C1, C2)
    status, job_id = sessions.close(world.rt, session["session_id"])
    assert status == "open" and job_id
    world.run_enqueued("session-close")
    closed = sessions.get(world.redis, session["session_id"])
    assert closed["status"] == "closed" and closed["closed_at"]
    assert world.state(session["conversation_sid"]) == "closed"
    assert pools.sessions_using(world.redis, P1) == set()
    pools.remove(world.redis, "default", P1)  # no session uses it now
    pool(world, P1)
    assert open_(world, C1, C2)["status"] == "open"  # the same pairs again
    assert duplicates(world) == 0
    assert sessions.close(world.rt, session["session_id"]) == ("closed", "")


def test_twilio_s_timer_closes_the_session_through_the_post_event(world):
    pool(world, P1)
    session = open_(world, C1, C2, ttl="20m")
    world.advance(20 * 60 + 1)
    world.deliver_all()  # onConversationStateUpdated: closed
    assert sessions.get(world.redis, session["session_id"])["status"] == "closed"
    assert pools.sessions_using(world.redis, P1) == set()


def test_without_the_post_event_the_check_at_the_ttl_closes_the_session(world):
    pool(world, P1)
    session = open_(world, C1, C2, ttl="20m")
    world.advance(20 * 60 + 1)
    world.drop_webhooks()
    check = world.queue.take("session-check")
    assert len(check) == 1 and check[0].delay == 20 * 60 + 60
    assert sessions.check_ended(world.rt, **check[0].kwargs)["outcome"] == "closed"
    assert sessions.get(world.redis, session["session_id"])["status"] == "closed"


def test_a_session_whose_conversation_someone_else_closed_follows_the_ledger(world):
    pool(world, P1)
    session = open_(world, C1, C2)
    world.rest_set_state(session["conversation_sid"], "closed", webhooks=True)
    world.deliver_all()
    assert sessions.get(world.redis, session["session_id"])["status"] == "closed"


@pytest.mark.parametrize(
    "killed_at, occurrence",
    [("conversation.create", 1), ("participant.create", 1), ("participant.create", 2)],
)
def test_a_job_killed_mid_way_is_finished_by_its_retry(killed_at, occurrence):
    """SIGKILL just after the conversation's create (before its SID was recorded), or at the
    first add: the reservations lapse, and the retry finds its conversation (by its unique name,
    50353, when its SID was never recorded) instead of making a second one."""
    world = World(settings_overrides={"reservation_ttl": 3600.0})
    try:
        pool(world, P1, P2)
        session_id, _ = sessions.open_session(world.rt, request(C1, C2))
        job = world.queue.take("session-open")[0]
        task = world.start("killed", lambda: sessions.run_opening(world.rt, **job.kwargs))
        task.run_until(f"twilio:{killed_at}", occurrence=occurrence)
        task.advance()  # the call is made; the worker dies before its next step
        task.abort()
        world.redis.delete(keys.session_lock(session_id))  # its lease runs out
        for key in world.redis.keys("bindery:reservation:*"):
            world.redis.delete(key)  # and so do its reservations
        assert sessions.run_opening(world.rt, **job.kwargs)["outcome"] == "open"
        assert world.twilio.errors[50353] == (killed_at == "conversation.create")
        assert len(world.store.list_conversations(world.twilio.service_sid)) == 1
        session = sessions.get(world.redis, session_id)
        assert len(twilio_pairs(world, session["conversation_sid"])) == 2
        assert duplicates(world) == 0
        for p in session["participants"][:2]:  # each use lasts as long as the session
            usage = world.redis.zscore(
                keys.number_usage(p["proxy_address"]), pools.usage_member(session_id, p["address"])
            )
            assert usage == float("inf")
        assert not world.redis.keys("bindery:reservation:*")
    finally:
        world.close()


def test_a_number_in_use_cannot_be_removed(world):
    pool(world, P1, P2)
    open_(world, C1, C2)
    used = {n.number: n.sessions for n in pools.show(world.redis, "default")}
    number = next(n for n, count in used.items() if count)
    with pytest.raises(pools.PoolError) as refused:
        pools.remove(world.redis, "default", number)
    assert refused.value.status == 409 and refused.value.sessions == 1
    with pytest.raises(pools.PoolError) as dropped:
        pools.put(world.redis, "default", [])
    assert dropped.value.status == 409
    assert pools.pool_of(world.redis, number) == "default"


def test_a_number_belongs_to_one_pool(world):
    pool(world, P1)
    with pytest.raises(pools.PoolError, match="in pool default"):
        pools.add(world.redis, "other", pools.make_number(P1))
    assert pools.pool_of(world.redis, P1) == "default" and pools.pool_of(world.redis, P2) is None


def test_latest_for_is_the_customer_s_newest_session_even_after_it_ended(world):
    pool(world, P1, P2)
    first = open_(world, C1, C2)
    second = open_(world, C1, C3)
    sessions.close(world.rt, second["session_id"])
    world.run_enqueued("session-close")
    latest = sessions.latest_for(world.redis, "default", C1)
    assert latest["session_id"] == second["session_id"] and latest["status"] == "closed"
    assert sessions.latest_for(world.redis, "default", C2)["session_id"] == first["session_id"]
    assert sessions.latest_for(world.redis, "other", C1) is None


def test_sticky_selection_gives_the_customer_its_number_of_last_time(world):
    pool(world, P1, P2)
    first = open_(world, C1, C2)
    sessions.close(world.rt, first["session_id"])
    world.run_enqueued("session-close")
    again = open_(world, C1, C3)
    assert again["participants"][0]["proxy_address"] == first["participants"][0]["proxy_address"]
    avoided = open_(world, C2, C3, number_selection="avoid-sticky")
    assert avoided["participants"][0]["proxy_address"] != first["participants"][1]["proxy_address"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"participants": [{"address": C1}]}, "participants"),
        ({"participants": [{"address": C1}, {"address": C1}]}, "participants[1].address"),
        (
            {"participants": [{"address": "15551230001"}, {"identity": "a"}]},
            "participants[0].address",
        ),
        ({"participants": [{"identity": "a"}, {"identity": "b"}]}, "participants"),
        ({"participants": [{"address": C1}, {"identity": "a"}], "ttl": "5m"}, "ttl"),
        ({"participants": [{"address": C1}, {"identity": "a"}], "geo_match": "x"}, "geo_match"),
        (
            {"participants": [{"address": C1}, {"identity": "a"}], "number_selection": 1},
            "number_selection",
        ),
        ({"participants": [{"address": C1}, {"identity": "a"}], "pool": "a b"}, "pool"),
        (
            {"participants": [{"address": C1, "proxy_address": C1}, {"identity": "a"}]},
            "participants[0].proxy_address",
        ),
        ({"participants": [{"address": C1}, {"identity": "a"}], "colour": 1}, "colour"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(sessions.RequestProblem) as refused:
        SessionRequest.from_body(body)
    assert refused.value.field == field


def test_reservations_are_let_go_when_the_session_fails_for_a_twilio_refusal(world):
    pool(world, P1, P2)
    world.twilio.before_call = _refuse_creates
    failed = open_(world, C1, C2)
    assert failed["status"] == "failed" and "Twilio refused" in failed["error"]
    assert not world.redis.keys("bindery:reservation:*")
    assert pools.sessions_using(world.redis, P1) | pools.sessions_using(world.redis, P2) == set()
    assert allocation.reserved_by(world.redis, C1, P1) == ""


def _refuse_creates(operation, args, kwargs):
    if operation == "conversation.create":  # as the gateway raises Twilio's 4xx answers
        raise errors.classify(50000, 400, "refused by the test", operation)


def test_a_customer_texting_the_reserved_number_while_the_session_opens_meets_no_50416(world):
    """Between the reservation of (C1, P1) and the session's add, C1 texts P1: Twilio autocreates
    a conversation holding the pair (after Bindery's pre-event marked it). The session's add asks
    Twilio, finds the holder, and gives C1 the other number."""
    pool(world, P1, P2)
    world.redis.set(keys.customer_sticky("default", C1), P1)
    session_id, _ = sessions.open_session(world.rt, request(C1, C2))
    job = world.queue.take("session-open")[0]
    task = world.start("opening", lambda: sessions.run_opening(world.rt, **job.kwargs))
    task.run_until("twilio:conversation.create")
    assert allocation.reserved_by(world.redis, C1, P1) == session_id
    texted = world.inbound(C1, P1)
    world.deliver_all()
    assert task.finish()["outcome"] == "open"
    session = sessions.get(world.redis, session_id)
    assert session["participants"][0]["proxy_address"] == P2
    assert world.rt.ledger.pair(keys.pair_id(C1, P1)).holder == texted
    assert duplicates(world) == 0


def test_a_delete_while_the_session_opens_waits_for_it_then_closes_it(world):
    pool(world, P1, P2)
    session_id, _ = sessions.open_session(world.rt, request(C1, C2))
    job = world.queue.take("session-open")[0]
    task = world.start("opening", lambda: sessions.run_opening(world.rt, **job.kwargs))
    task.run_until("twilio:participant.create")
    sessions.close(world.rt, session_id)
    closing = world.queue.take("session-close")[0]
    with pytest.raises(errors.LockBusy):  # RQ retries it later
        sessions.run_closing(world.rt, **closing.kwargs)
    assert task.finish()["outcome"] == "open"
    assert sessions.run_closing(world.rt, **closing.kwargs)["outcome"] == "closed"
    session = sessions.get(world.redis, session_id)
    assert session["status"] == "closed"
    assert world.state(session["conversation_sid"]) == "closed"
    assert pools.sessions_using(world.redis, P1) | pools.sessions_using(world.redis, P2) == set()


def test_a_delete_before_the_job_runs_closes_it_and_the_job_does_nothing(world):
    pool(world, P1)
    session_id, _ = sessions.open_session(world.rt, request(C1, C2))
    sessions.close(world.rt, session_id)
    assert world.run_enqueued("session-close")[0]["outcome"] == "closed"
    assert world.run_enqueued("session-open")[0]["outcome"] == "closed"
    assert world.twilio.calls["conversation.create"] == 0


@pytest.mark.parametrize("seed", range(12))
def test_randomly_interleaved_sessions_closes_and_outside_binds_never_share_a_pair(seed):
    """Session jobs, close jobs and (in odd seeds) another app's REST binds without webhooks, their
    steps taken in a random order: no two open sessions ever share a pair; Twilio answers no
    duplicate but one per bind Bindery could not know of (one landing between a job's look at
    Twilio and its create: a race Twilio's API cannot exclude, reconciled); every session ends
    open, closed, or failed with 80206 (or its pair held elsewhere)."""
    import random

    rng = random.Random(seed)
    world = World()
    try:
        numbers = [f"+155500000{i:02d}" for i in range(3)]
        customers = [f"+155512300{i:02d}" for i in range(4)]
        pool(world, *numbers)
        ids, tasks = [], []
        for i in range(8):
            a, b = rng.sample(customers, 2)
            session_id, _ = sessions.open_session(world.rt, request(a, b, "agent"))
            ids.append(session_id)
            job = world.queue.take("session-open")[0]
            tasks.append(
                world.start(
                    f"open-{i}", lambda job=job: sessions.run_opening(world.rt, **job.kwargs)
                )
            )
        outside = world.conversation()
        outside_binds = 0
        for _ in range(400):
            live = [t for t in tasks if not t.done]
            if not live:
                break
            roll = rng.random()
            if roll < 0.03 and seed % 2:
                customer, number = rng.choice(customers), rng.choice(numbers)
                if world.store.holder_of(customer, number) is None:
                    world.rest_add(outside, address=customer, proxy_address=number)
                    outside_binds += 1
            elif roll < 0.06:
                victim = rng.choice(ids)
                sessions.close(world.rt, victim)
                for job in world.queue.take("session-close"):
                    tasks.append(
                        world.start(
                            f"close-{len(tasks)}",
                            lambda job=job: sessions.run_closing(world.rt, **job.kwargs),
                        )
                    )
            else:
                rng.choice(live).advance()
            _assert_open_sessions_share_no_pair(world, ids)
        for task in tasks:
            task.finish()
        for task in tasks:  # a job that met a busy lock is retried by RQ: once more here
            if isinstance(task.error, errors.Retryable):
                function = (
                    sessions.run_opening if task.name.startswith("open") else sessions.run_closing
                )
                session_id = (
                    ids[int(task.name.split("-")[1])] if task.name.startswith("open") else None
                )
                if session_id:
                    function(world.rt, session_id)
            elif task.error is not None:
                raise task.error
        world.queue.take()
        _assert_open_sessions_share_no_pair(world, ids)
        assert duplicates(world) <= outside_binds
        for session_id in ids:
            found = sessions.get(world.redis, session_id)
            assert found["status"] in ("open", "closed", "failed"), found
            if found["status"] == "failed":
                assert found["error_code"] in (80206, errors.PAIR_HELD_ELSEWHERE), found
    finally:
        world.close()


def _assert_open_sessions_share_no_pair(world: World, ids: list[str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for session_id in ids:
        record = sessions.load(world.redis, session_id)
        if record.status != "open":
            continue
        for p in record.customers:
            pair = (p["address"], p["proxy_address"])
            assert pair not in seen, (pair, seen[pair], session_id)
            seen[pair] = session_id


def test_in_the_trusting_ledger_mode_a_pair_bound_behind_bindery_s_back_costs_one_50416():
    """BINDERY_LEDGER_MODE=trust asks Twilio about nothing the ledger never saw: a pair bound
    without any webhook meets one 50416, reconciled (the ledger learns its holder), and the
    customer is given another number."""
    world = World(settings_overrides={"ledger_mode": "trust"})
    try:
        world.rt.ledger.note_reconciled(world.rt.clock.now())
        pool(world, P1, P2)
        elsewhere = world.conversation()
        world.rest_add(elsewhere, address=C1, proxy_address=P1)
        world.redis.set(keys.customer_sticky("default", C1), P1)
        session = open_(world, C1, C2)
        assert session["status"] == "open"
        assert session["participants"][0]["proxy_address"] == P2
        assert world.twilio.errors[50416] == 1
        assert world.rt.ledger.counters()["reconciled_50416"] == 1
        assert world.rt.ledger.pair(keys.pair_id(C1, P1)).holder == elsewhere
    finally:
        world.close()
