"""Choosing a customer's proxy number: the rules (sticky, avoid-sticky, geo match, held pairs
skipped, exhaustion, a fixed proxy, reservations that lapse), decided by the one Lua step against
fakeredis, with the emulator's store behind the gateway (`tests/workers/world.py`)."""

from __future__ import annotations

import random
import time

import pytest

from tests.workers.world import World
from workers import allocation, keys, pools
from workers.allocation import Exhausted, allocate, reserve_fixed

CUSTOMER = "+15551230001"
SESSION_A, SESSION_B = "BS" + "a" * 32, "BS" + "b" * 32
P1, P2, P3 = "+15550000001", "+15550000002", "+15550000003"


@pytest.fixture
def world():
    world = World()
    yield world
    world.close()


def pool(world: World, *numbers, name: str = "default") -> None:
    pools.put(world.redis, name, [pools.make_number(n) for n in numbers])


def hold_in_ledger(world: World, customer: str, proxy: str, conversation: str = "") -> None:
    conversation = conversation or "CH" + "9" * 32
    world.rt.ledger.bind(keys.pair_id(customer, proxy), conversation, "MB" + "1" * 32, 1.0)


def test_prefer_sticky_gives_the_last_proxy_again_when_it_is_free(world):
    pool(world, P1, P2, P3)
    first = allocate(world.rt, SESSION_A, "default", CUSTOMER)
    allocation.release(world.redis, SESSION_A, CUSTOMER, first)
    for seed in range(10):
        again = allocate(world.rt, SESSION_B, "default", CUSTOMER, rng=random.Random(seed))
        assert again == first
        allocation.release(world.redis, SESSION_B, CUSTOMER, again)


def test_prefer_sticky_falls_back_when_the_last_pair_is_held(world):
    pool(world, P1, P2)
    first = allocate(world.rt, SESSION_A, "default", CUSTOMER)  # still reserved by A
    second = allocate(world.rt, SESSION_B, "default", CUSTOMER)
    assert {first, second} == {P1, P2}


def test_avoid_sticky_gives_another_number_while_there_is_one(world):
    pool(world, P1, P2, P3)
    first = allocate(world.rt, SESSION_A, "default", CUSTOMER)
    allocation.release(world.redis, SESSION_A, CUSTOMER, first)
    for seed in range(10):
        other = allocate(
            world.rt,
            SESSION_B,
            "default",
            CUSTOMER,
            selection=allocation.AVOID_STICKY,
            rng=random.Random(seed),
        )
        assert other != first
        allocation.release(world.redis, SESSION_B, CUSTOMER, other)
        world.redis.set(keys.customer_sticky("default", CUSTOMER), first)


def test_avoid_sticky_still_gives_the_last_number_when_it_is_the_only_one_free(world):
    pool(world, P1, P2)
    first = allocate(world.rt, SESSION_A, "default", CUSTOMER)
    allocation.release(world.redis, SESSION_A, CUSTOMER, first)
    other = ({P1, P2} - {first}).pop()
    hold_in_ledger(world, CUSTOMER, other)
    again = allocate(world.rt, SESSION_B, "default", CUSTOMER, selection=allocation.AVOID_STICKY)
    assert again == first


def test_geo_match_country_gives_a_number_of_the_customer_s_country(world):
    pools.put(
        world.redis,
        "default",
        [
            pools.make_number("+442071838750"),  # GB
            pools.make_number("+14155550100"),  # US 415
            pools.make_number("+16045550100"),  # CA 604
        ],
    )
    assert allocate(world.rt, SESSION_A, "default", "+16045550199", geo_match="country") == (
        "+16045550100"
    )
    assert allocate(world.rt, SESSION_A, "default", "+442079460000", geo_match="country") == (
        "+442071838750"
    )
    with pytest.raises(Exhausted, match="country \\(FR\\)"):
        allocate(world.rt, SESSION_A, "default", "+33612345678", geo_match="country")


def test_geo_match_area_code_gives_a_number_of_the_customer_s_area_code(world):
    pools.put(
        world.redis,
        "default",
        [
            pools.make_number("+14155550100"),
            pools.make_number("+12125550100"),
            pools.make_number("+15550000009", country="US", area_code="212"),  # a label wins
        ],
    )
    for _ in range(5):
        chosen = allocate(world.rt, SESSION_A, "default", "+12125550199", geo_match="area-code")
        assert chosen in {"+12125550100", "+15550000009"}
        allocation.release(world.redis, SESSION_A, "+12125550199", chosen)
    with pytest.raises(Exhausted, match="area code"):
        allocate(world.rt, SESSION_A, "default", "+13125550199", geo_match="area-code")


def test_a_customer_gets_a_number_of_its_own_channel(world):
    pool(world, P1, "whatsapp:+15550000002")
    assert allocate(world.rt, SESSION_A, "default", "whatsapp:+15551230009") == (
        "whatsapp:+15550000002"
    )
    assert allocate(world.rt, SESSION_A, "default", "+15551230009") == P1


def test_pairs_the_ledger_says_are_held_are_skipped(world):
    pool(world, P1, P2, P3)
    hold_in_ledger(world, CUSTOMER, P1)
    hold_in_ledger(world, CUSTOMER, P3)
    for seed in range(10):
        chosen = allocate(world.rt, SESSION_A, "default", CUSTOMER, rng=random.Random(seed))
        assert chosen == P2
        allocation.release(world.redis, SESSION_A, CUSTOMER, chosen)


def test_a_fresh_pending_mark_blocks_the_pair_and_an_old_one_does_not(world):
    """A pending mark is a create in flight (or an add a pre-event let through): the pair is not
    chosen. One older than PENDING_BLOCKS_FOR is a create whose answer was lost: the pair may be
    chosen, and the add asks Twilio before it acts (`workers/participants.py`)."""
    pool(world, P1)
    now = world.rt.clock.now()
    pair = keys.pair_id(CUSTOMER, P1)
    world.rt.ledger.mark_pending_for_pre_event(pair, "CH" + "7" * 32, now - 10)
    with pytest.raises(Exhausted):
        allocate(world.rt, SESSION_A, "default", CUSTOMER)
    world.rt.ledger.mark_pending_for_pre_event(
        pair, "CH" + "7" * 32, now - allocation.PENDING_BLOCKS_FOR - 1
    )
    assert allocate(world.rt, SESSION_A, "default", CUSTOMER) == P1


def test_other_customers_are_not_held_back_by_a_customer_s_pairs(world):
    pool(world, P1)
    hold_in_ledger(world, CUSTOMER, P1)
    assert allocate(world.rt, SESSION_A, "default", "+15551230002") == P1


def test_exhaustion_names_the_customer_masked_and_the_pool(world):
    pool(world, P1, P2, name="rides")
    hold_in_ledger(world, CUSTOMER, P1)
    allocate(world.rt, SESSION_A, "rides", CUSTOMER)
    with pytest.raises(Exhausted) as raised:
        allocate(world.rt, SESSION_B, "rides", CUSTOMER)
    message = str(raised.value)
    assert "pool rides" in message and "+1555*****01" in message
    assert CUSTOMER not in message
    assert raised.value.code == 80206


def test_an_empty_or_unknown_pool_is_exhausted_at_once(world):
    with pytest.raises(Exhausted, match="no numbers"):
        allocate(world.rt, SESSION_A, "nowhere", CUSTOMER)


def test_a_fixed_proxy_is_reserved_by_the_same_step_or_refused(world):
    pool(world, P1, P2)
    assert reserve_fixed(world.rt, SESSION_A, "default", CUSTOMER, P1) == P1
    assert reserve_fixed(world.rt, SESSION_B, "default", CUSTOMER, P1) == ""  # A's
    assert reserve_fixed(world.rt, SESSION_A, "default", CUSTOMER, P1) == P1  # renewed
    hold_in_ledger(world, CUSTOMER, P2)
    assert reserve_fixed(world.rt, SESSION_B, "default", CUSTOMER, P2) == ""
    assert reserve_fixed(world.rt, SESSION_B, "default", CUSTOMER, P3) == ""  # not in the pool


def test_a_pair_of_the_session_s_own_conversation_is_its_own_again(world):
    """A job retried after its worker died: the pair its create marked pending (or bound) in its
    conversation is its own, even if the number left the pool meanwhile."""
    pool(world, P1)
    conversation = "CH" + "5" * 32
    pair = keys.pair_id(CUSTOMER, P1)
    world.rt.ledger.mark_pending(
        pair, conversation, world.rt.clock.now(), world.rt.locks().fence(), ""
    )
    pools.remove(world.redis, "default", P1)
    assert reserve_fixed(world.rt, SESSION_A, "default", CUSTOMER, P1, conversation) == P1
    assert reserve_fixed(world.rt, SESSION_B, "default", CUSTOMER, P1) == ""


def test_a_reservation_lapses_by_itself_when_its_job_is_gone():
    """A worker SIGKILLed mid-job never releases: the reservation and the number's use end with
    BINDERY_RESERVATION_TTL (shortened here), and another session may have the pair."""
    world = World(settings_overrides={"reservation_ttl": 0.3})
    try:
        pool(world, P1)
        assert allocate(world.rt, SESSION_A, "default", CUSTOMER) == P1
        assert pools.sessions_using(world.redis, P1) == {SESSION_A}
        with pytest.raises(Exhausted):
            allocate(world.rt, SESSION_B, "default", CUSTOMER)
        time.sleep(0.4)
        assert pools.sessions_using(world.redis, P1) == set()
        assert allocate(world.rt, SESSION_B, "default", CUSTOMER) == P1
    finally:
        world.close()


def test_two_sessions_for_one_customer_at_the_same_instant_get_different_pairs(world):
    """Each job paused at every Redis call, the two interleaved step by step: the one Lua step
    decides, so the pairs differ (and with one number, one is exhausted)."""
    pool(world, P1, P2)
    results = {}

    def job(session):
        def run():
            try:
                results[session] = allocate(world.rt, session, "default", CUSTOMER)
            except Exhausted as error:
                results[session] = error

        return run

    for order in ("ab", "ba", "abab"):
        results.clear()
        for session in (SESSION_A, SESSION_B):
            for number in (P1, P2):
                allocation.release(world.redis, session, CUSTOMER, number)
        a, b = world.start("a", job(SESSION_A)), world.start("b", job(SESSION_B))
        tasks = {"a": a, "b": b}
        while not (a.done and b.done):
            for name in order:
                tasks[name].advance()
        assert results[SESSION_A] != results[SESSION_B]
        assert {results[SESSION_A], results[SESSION_B]} == {P1, P2}

    pools.put(world.redis, "solo", [pools.make_number(P3)])
    outcomes = []
    tasks = [world.start(s, lambda s=s: outcomes.append(_try(world, s, "solo"))) for s in "cd"]
    while not all(t.done for t in tasks):
        for task in tasks:
            task.advance()
    assert sorted(map(type, outcomes), key=str) == sorted([str, Exhausted], key=str)


def _try(world: World, session: str, pool_name: str):
    try:
        return allocate(world.rt, "BS" + session * 32, pool_name, CUSTOMER)
    except Exhausted as error:
        return error


def test_a_large_pool_is_looked_at_in_chunks_until_a_number_is_free(world):
    numbers = [f"+1555000{i:04d}" for i in range(allocation.CHUNK * 2 + 3)]
    pool(world, *numbers)
    free = numbers[-1]
    for number in numbers[:-1]:
        hold_in_ledger(world, CUSTOMER, number)
    assert allocate(world.rt, SESSION_A, "default", CUSTOMER) == free
    with pytest.raises(Exhausted):
        allocate(world.rt, SESSION_B, "default", CUSTOMER)
