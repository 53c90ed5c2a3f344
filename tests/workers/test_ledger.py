"""The ledger's ordering rules: late, repeated and out-of-order knowledge never undoes newer."""

import pytest

from workers.keys import pair_id
from workers.ledger import Ledger

A = "CH" + "a" * 32
B = "CH" + "b" * 32
PAIR = pair_id("+15551230001", "+15550001111")


@pytest.fixture
def ledger(fake_redis):
    return Ledger(fake_redis)


def test_unknown_pair_and_conversation(ledger):
    assert ledger.pair(PAIR) is None
    assert not ledger.conversation(A).known


def test_bind_then_release(ledger):
    assert ledger.bind(PAIR, A, "MB1", at=10)
    assert ledger.pair(PAIR).holder == A
    assert ledger.pairs_of(A) == {PAIR}
    assert ledger.release(PAIR, A, at=20)
    record = ledger.pair(PAIR)
    assert not record.held and record.released_from == A
    assert ledger.pairs_of(A) == set()


def test_late_added_after_removed_is_ignored(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.release(PAIR, A, at=20)
    assert not ledger.bind(PAIR, A, "MB1", at=10)  # the "added" webhook redelivered late
    assert not ledger.pair(PAIR).held


def test_release_from_a_conversation_that_no_longer_holds_is_ignored(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.bind(PAIR, B, "MB2", at=30)
    assert not ledger.release(PAIR, A, at=20)
    assert ledger.pair(PAIR).holder == B
    assert ledger.pairs_of(A) == set() and ledger.pairs_of(B) == {PAIR}


def test_states_never_go_back_in_time(ledger):
    assert ledger.set_state(A, "active", at=10)
    assert ledger.set_state(A, "inactive", at=30)
    assert not ledger.set_state(A, "active", at=20)
    assert ledger.conversation(A).state == "inactive"


def test_closed_is_final_and_releases_pairs(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.add_identity(A, "agent-1")
    assert ledger.set_state(A, "closed", at=5)  # closing is never superseded, even when older
    assert ledger.conversation(A).state == "closed"
    assert not ledger.pair(PAIR).held
    assert not ledger.has_identity(A, "agent-1")
    assert not ledger.set_state(A, "active", at=100)
    assert not ledger.bind(PAIR, A, "MB1", at=100)


def test_touch_keeps_the_latest_activity(ledger):
    ledger.touch(A, 50)
    ledger.touch(A, 40)
    assert ledger.conversation(A).last_activity == 50


def test_counters(ledger):
    ledger.count("duplicate_attempts_avoided")
    ledger.count("duplicate_attempts_avoided", 2)
    assert ledger.counters() == {"duplicate_attempts_avoided": 3}
