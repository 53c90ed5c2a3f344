"""The ledger's rules: late, repeated and out-of-order knowledge never undoes newer; a release lets
go only of what the conversation still holds; a write whose lease ran out is recorded as pending."""

import pytest

from workers.errors import LockLost
from workers.keys import pair_id
from workers.ledger import Ledger
from workers.locks import Locks

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
    assert ledger.bind(PAIR, A, "MB1", at=10) == "ok"
    assert ledger.pair(PAIR).holder == A
    assert ledger.pairs_of(A) == {PAIR}
    assert ledger.release(PAIR, A, at=20, participant_sid="MB1") == "ok"
    record = ledger.pair(PAIR)
    assert not record.held and record.released_from == A and record.released_participant == "MB1"
    assert ledger.pairs_of(A) == set()


def test_late_added_after_removed_is_ignored(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.release(PAIR, A, at=20, participant_sid="MB1")
    assert ledger.bind(PAIR, A, "MB1", at=10) == "stale"  # the "added" webhook redelivered late
    assert not ledger.pair(PAIR).held


def test_a_removal_known_first_still_wins_over_its_late_add(ledger):
    assert ledger.release(PAIR, A, at=20, participant_sid="MB1") == "ok"
    assert ledger.bind(PAIR, A, "MB1", at=10) == "stale"
    assert not ledger.pair(PAIR).held


def test_a_participant_added_again_is_not_undone_by_the_old_one_s_removal(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.release(PAIR, A, at=20, participant_sid="MB1")
    assert ledger.bind(PAIR, A, "MB2", at=20) == "ok"  # same second, another participant
    assert ledger.release(PAIR, A, at=20, participant_sid="MB1") == "stale"
    assert ledger.pair(PAIR).holder == A and ledger.pair(PAIR).participant_sid == "MB2"


def test_release_from_a_conversation_that_no_longer_holds_is_ignored(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.bind(PAIR, B, "MB2", at=30)
    assert ledger.release(PAIR, A, at=20) == "stale"
    assert ledger.pair(PAIR).holder == B
    assert ledger.pairs_of(A) == set() and ledger.pairs_of(B) == {PAIR}


def test_states_never_go_back_in_time(ledger):
    assert ledger.set_state(A, "active", at=10)
    assert ledger.set_state(A, "inactive", at=30)
    assert not ledger.set_state(A, "active", at=20)
    assert ledger.conversation(A).state == "inactive"
    assert ledger.set_state(A, "active", at=20, authoritative=True)  # Twilio, just asked
    assert ledger.conversation(A).state == "active"


def test_of_active_and_inactive_in_the_same_second_active_is_kept(ledger):
    """Whole-second times cannot order them; in either order of delivery the ledger says active,
    so no automatic close rests on the tie."""
    ledger.set_state(A, "inactive", at=10)
    ledger.set_state(A, "active", at=10)
    ledger.set_state(B, "active", at=10)
    ledger.set_state(B, "inactive", at=10)
    assert ledger.conversation(A).state == ledger.conversation(B).state == "active"


def test_closed_is_final_and_releases_pairs(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.member_added(A, "agent-1", "MB9", at=10)
    assert ledger.set_state(A, "closed", at=5)  # closing is never superseded, even when older
    assert ledger.conversation(A).state == "closed"
    assert not ledger.pair(PAIR).held
    assert not ledger.has_identity(A, "agent-1")
    assert not ledger.set_state(A, "active", at=100)
    assert not ledger.set_state(A, "active", at=100, authoritative=True)
    assert ledger.bind(PAIR, A, "MB1", at=100) == "stale"


def test_a_close_releases_only_the_pairs_the_conversation_still_holds(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.bind(PAIR, B, "MB2", at=20)
    ledger.redis.hset(f"bindery:conv:{A}", "pairs", PAIR)  # as if A's record still listed it
    ledger.set_state(A, "closed", at=30)
    assert ledger.pair(PAIR).holder == B


def test_members_are_ordered_by_participant_and_time(ledger):
    assert ledger.member_added(A, "agent-1", "MB1", at=10) == "ok"
    assert ledger.member_removed(A, "agent-1", "MB1", at=20) == "ok"
    assert ledger.member_added(A, "agent-1", "MB1", at=10) == "stale"  # late, and removed since
    assert not ledger.has_identity(A, "agent-1")
    assert ledger.member_added(A, "agent-1", "MB2", at=30) == "ok"
    assert ledger.member_removed(A, "agent-1", "MB1", at=20) == "stale"  # the old one
    assert ledger.identities_of(A) == {"agent-1"}


def test_a_fenced_write_of_a_job_whose_lease_ran_out_becomes_pending(fake_redis, ledger):
    with Locks(fake_redis, ttl=60, wait=0, renew=False) as locks:
        locks.acquire([f"bindery:lock:pair:{PAIR}"])
        fence = locks.fence()
        fake_redis.delete(f"bindery:lock:pair:{PAIR}")  # the lease ran out
        ledger.bind(PAIR, B, "MB2", at=20)  # what the next job learned
        with pytest.raises(LockLost):
            ledger.mark_free(PAIR, at=30, fence=fence, expected_pending="", marker=A)
    record = ledger.pair(PAIR)
    assert record.holder == B and record.pending == A  # kept, and the next job asks Twilio


def test_marks_made_since_a_read_are_not_lost(fake_redis, ledger):
    ledger.mark_free(PAIR, at=10, fence=_no_locks(fake_redis), expected_pending="", marker=A)
    ledger.mark_pending_for_pre_event(PAIR, B, at=11)  # a pre-event let an SDK add through
    # A job that read the pair before that mark must look again, not clear it.
    assert ledger.mark_free(PAIR, 12, _no_locks(fake_redis), expected_pending="", marker=A) == (
        "changed"
    )
    assert ledger.mark_pending(PAIR, A, 12, _no_locks(fake_redis), expected_pending="") == "changed"
    assert ledger.pair(PAIR).pending == B


def _no_locks(fake_redis):
    return Locks(fake_redis, ttl=60, wait=0, renew=False).fence()


def test_touch_keeps_the_latest_activity(ledger):
    ledger.touch(A, 50)
    ledger.touch(A, 40)
    assert ledger.conversation(A).last_activity == 50


def test_conversations_known_only_by_their_pairs_are_listed(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)  # a holder learned from a lookup, no record of its own
    assert ledger.conversation_sids() == [A]


def test_counters(ledger):
    ledger.count("duplicate_attempts_avoided")
    ledger.count("duplicate_attempts_avoided", 2)
    assert ledger.counters() == {"duplicate_attempts_avoided": 3}


def test_pruning_forgets_what_is_over_and_keeps_what_is_not(ledger):
    """Issue 15: records of conversations closed, and pairs let go, longer ago than the limit are
    deleted; a pair bound again, or a conversation still open, is kept."""
    other_pair = pair_id("+15551230002", "+15550001111")
    ledger.record_conversation(A, "active", at=10)
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.set_state(A, "closed", at=100)  # releases PAIR
    ledger.record_conversation(B, "active", at=10)
    ledger.bind(other_pair, B, "MB2", at=10)
    ledger.release(other_pair, B, at=150, participant_sid="MB2")
    ledger.bind(other_pair, B, "MB3", at=160)  # bound again: not over

    assert ledger.prune(older_than=50) == 0  # nothing that old
    assert ledger.prune(older_than=1000) == 2  # A and its pair
    assert not ledger.conversation(A).known and ledger.pair(PAIR) is None
    assert ledger.pair(other_pair).holder == B and ledger.conversation(B).state == "active"
    assert ledger.redis.zcard("bindery:ended") == 0


def test_a_pair_let_go_again_later_is_pruned_by_its_latest_time(ledger):
    ledger.bind(PAIR, A, "MB1", at=10)
    ledger.release(PAIR, A, at=20, participant_sid="MB1")
    ledger.bind(PAIR, B, "MB2", at=30)
    ledger.redis.zadd("bindery:ended", {f"pair:{PAIR}": 20})  # as if its entry were stale
    ledger.release(PAIR, B, at=500, participant_sid="MB2")
    assert ledger.prune(older_than=100) == 0
    assert ledger.pair(PAIR) is not None
    assert ledger.prune(older_than=1000) == 1


def test_many_conversations_read_at_once_are_each_as_read_alone(ledger):
    ledger.record_conversation(A, "active", at=10, service_sid="IS" + "1" * 32)
    ledger.set_state(B, "inactive", at=20)
    unknown = "CH" + "9" * 32
    assert ledger.conversations([A, unknown, B]) == [
        ledger.conversation(A),
        ledger.conversation(unknown),
        ledger.conversation(B),
    ]
    assert [r.state for r in ledger.conversations([A, unknown, B])] == ["active", "", "inactive"]


def test_a_new_participant_bound_in_the_second_its_holder_was_found_gone_is_kept(ledger):
    """Twilio said nobody holds the pair (the participant was removed behind Bindery's back), so
    the ledger let go of it; the add's own participant, created in the same second, is bound.
    The participant let go of is remembered, as a release remembers it, so the new one is not
    mistaken for a late word of the old (interleavings, verifying mode)."""
    from workers.ledger import NO_FENCE

    assert ledger.bind(PAIR, A, "MB1", at=10) == "ok"
    assert ledger.mark_free(PAIR, 10, NO_FENCE, expected_pending="", marker=A) == "ok"
    assert ledger.pair(PAIR).released_participant == "MB1"
    assert ledger.bind(PAIR, A, "MB1", at=10) == "stale"  # the old one, late
    assert ledger.bind(PAIR, A, "MB2", at=10) == "ok"
    assert ledger.pairs_of(A) == {PAIR}
