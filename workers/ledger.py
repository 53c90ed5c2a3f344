"""The binding ledger: what Bindery knows of each conversation and each (address, proxy) pair.

The ledger is written by jobs only, under the conversation's lock (and the pair's, for bindings);
the web process only reads it (to answer pre-events). Every write carries the time of the event that
caused it, so late and repeated events cannot undo newer knowledge: a conversation's state never goes
back in time, closed and removed are final, and a pair released at t is not re-bound by an event older
than t.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from workers import keys

FINAL_STATES = ("closed", "removed")
HOLDING_STATES = ("active", "inactive")


@dataclass(frozen=True)
class PairRecord:
    pair_id: str
    holder: str  # conversation SID, "" when free
    participant_sid: str
    bound_at: float
    released_from: str
    released_at: float
    pending: str = ""  # a conversation whose create of this pair may or may not have happened

    @property
    def held(self) -> bool:
        return bool(self.holder)


@dataclass(frozen=True)
class ConversationRecord:
    sid: str
    state: str  # "" when the ledger has never heard of it
    state_at: float
    last_activity: float
    created_at: float

    @property
    def known(self) -> bool:
        return bool(self.state)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _number(value: bytes | str | None) -> float:
    return float(_text(value) or 0)


class Ledger:
    def __init__(self, connection: redis.Redis):
        self.redis = connection

    # -- reads ---------------------------------------------------------------------------------

    def pair(self, pair_id: str) -> PairRecord | None:
        """The pair's record, or None if the ledger has never heard of the pair."""
        raw = self.redis.hgetall(keys.pair(pair_id))
        if not raw:
            return None
        get = {_text(k): v for k, v in raw.items()}.get
        return PairRecord(
            pair_id=pair_id,
            holder=_text(get("holder")),
            participant_sid=_text(get("participant_sid")),
            bound_at=_number(get("bound_at")),
            released_from=_text(get("released_from")),
            released_at=_number(get("released_at")),
            pending=_text(get("pending")),
        )

    def conversation(self, sid: str) -> ConversationRecord:
        raw = self.redis.hgetall(keys.conversation(sid))
        get = {_text(k): v for k, v in raw.items()}.get
        return ConversationRecord(
            sid=sid,
            state=_text(get("state")),
            state_at=_number(get("state_at")),
            last_activity=_number(get("last_activity")),
            created_at=_number(get("created_at")),
        )

    def pairs_of(self, sid: str) -> set[str]:
        return {_text(p) for p in self.redis.smembers(keys.conversation_pairs(sid))}

    def has_identity(self, sid: str, identity: str) -> bool:
        return bool(self.redis.sismember(keys.conversation_identities(sid), identity))

    # -- writes --------------------------------------------------------------------------------

    def record_conversation(self, sid: str, state: str, at: float) -> None:
        """First sighting of a conversation: sets what is not known yet, never overwrites."""
        key = keys.conversation(sid)
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, "state", state)
        pipe.hsetnx(key, "state_at", at)
        pipe.hsetnx(key, "created_at", at)
        pipe.hsetnx(key, "last_activity", at)
        pipe.execute()

    def set_state(self, sid: str, state: str, at: float) -> bool:
        """Apply a state seen at `at`; False when it is older than what the ledger has, or final."""
        current = self.conversation(sid)
        if current.final:
            return False
        if current.known and at < current.state_at:
            if state not in FINAL_STATES:
                return False
            at = current.state_at  # closing is final whenever it was asked for
        pipe = self.redis.pipeline()
        pipe.hset(keys.conversation(sid), mapping={"state": state, "state_at": at})
        pipe.hsetnx(keys.conversation(sid), "created_at", at)
        if state in FINAL_STATES:
            self._release_all(pipe, sid, at)
        pipe.execute()
        return True

    def _release_all(self, pipe, sid: str, at: float) -> None:
        for pair_id in self.pairs_of(sid):
            record = self.pair(pair_id)
            if record is None or record.holder in ("", sid):
                self._release(pipe, pair_id, sid, at)
        pipe.delete(keys.conversation_identities(sid), keys.conversation_pending_identities(sid))

    def touch(self, sid: str, at: float) -> None:
        """Record activity (a message, an add) so idle conversations can be told from busy ones."""
        key = keys.conversation(sid)
        # Max of old and new: a late webhook must not make a busy conversation look idle.
        self.redis.eval(
            "local v = tonumber(redis.call('hget', KEYS[1], 'last_activity') or '0') "
            "if tonumber(ARGV[1]) > v then redis.call('hset', KEYS[1], 'last_activity', ARGV[1]) end",
            1,
            key,
            at,
        )

    def bind(self, pair_id: str, sid: str, participant_sid: str, at: float) -> bool:
        """Record that `sid` holds the pair since `at`; False if newer knowledge says otherwise."""
        record = self.pair(pair_id)
        if record and record.released_from == sid and record.released_at >= at:
            return False  # a late "added" for a pair this conversation already let go
        if record and record.held and record.holder != sid and record.bound_at > at:
            return False  # an older binding elsewhere cannot replace a newer one
        if self.conversation(sid).final:
            return False
        pipe = self.redis.pipeline()
        if record and record.held and record.holder != sid:
            pipe.srem(keys.conversation_pairs(record.holder), pair_id)
        pipe.hset(
            keys.pair(pair_id),
            mapping={"holder": sid, "participant_sid": participant_sid or "", "bound_at": at},
        )
        pipe.hdel(keys.pair(pair_id), "pending")
        pipe.sadd(keys.conversation_pairs(sid), pair_id)
        pipe.execute()
        return True

    def release(self, pair_id: str, sid: str, at: float) -> bool:
        """The pair left `sid` at `at` (participant removed, conversation closed or deleted)."""
        record = self.pair(pair_id)
        if record and record.held and record.holder != sid:
            return False  # it is held elsewhere now; nothing of ours to release
        if record and record.bound_at > at and record.holder == sid:
            return False  # re-bound after this removal happened
        pipe = self.redis.pipeline()
        self._release(pipe, pair_id, sid, at)
        pipe.execute()
        return True

    def mark_free(self, pair_id: str, at: float) -> None:
        """Twilio was asked and no open conversation holds the pair."""
        pipe = self.redis.pipeline()
        pipe.hset(keys.pair(pair_id), mapping={"holder": "", "checked_at": at})
        pipe.hdel(keys.pair(pair_id), "pending")
        pipe.execute()

    def mark_pending(self, pair_id: str, sid: str, at: float) -> None:
        """A create of the pair in `sid` is about to be sent. Until its answer is recorded, the
        ledger cannot know whether it happened (the worker may die, the call may time out), so
        the next job for the pair asks Twilio instead of trusting the ledger."""
        self.redis.hset(keys.pair(pair_id), mapping={"pending": sid, "pending_at": at})

    def clear_pending(self, pair_id: str) -> None:
        """The create was refused: nothing happened."""
        self.redis.hdel(keys.pair(pair_id), "pending")

    def add_identity(self, sid: str, identity: str) -> None:
        pipe = self.redis.pipeline()
        pipe.sadd(keys.conversation_identities(sid), identity)
        pipe.srem(keys.conversation_pending_identities(sid), identity)
        pipe.execute()

    def identity_pending(self, sid: str, identity: str) -> bool:
        return bool(self.redis.sismember(keys.conversation_pending_identities(sid), identity))

    def mark_identity_pending(self, sid: str, identity: str) -> None:
        """As `mark_pending`, for a chat participant's create."""
        self.redis.sadd(keys.conversation_pending_identities(sid), identity)

    def clear_identity_pending(self, sid: str, identity: str) -> None:
        self.redis.srem(keys.conversation_pending_identities(sid), identity)

    def remove_identity(self, sid: str, identity: str) -> None:
        self.redis.srem(keys.conversation_identities(sid), identity)

    @staticmethod
    def _release(pipe, pair_id: str, sid: str, at: float) -> None:
        pipe.hset(
            keys.pair(pair_id),
            mapping={"holder": "", "participant_sid": "", "released_from": sid, "released_at": at},
        )
        pipe.hdel(keys.pair(pair_id), "pending")
        pipe.srem(keys.conversation_pairs(sid), pair_id)

    def overwrite_state(self, sid: str, state: str, at: float) -> None:
        """Reconciliation only: Twilio's word replaces the ledger's, ordering rules aside."""
        pipe = self.redis.pipeline()
        pipe.hset(keys.conversation(sid), mapping={"state": state, "state_at": at})
        if state in FINAL_STATES:
            self._release_all(pipe, sid, at)
        pipe.execute()

    def identities_of(self, sid: str) -> set[str]:
        return {_text(i) for i in self.redis.smembers(keys.conversation_identities(sid))}

    def conversation_sids(self) -> list[str]:
        """Every conversation the ledger has a record of (a SCAN: for operations, not hot paths)."""
        prefix = len(keys.conversation(""))
        sids = []
        for key in self.redis.scan_iter(match=keys.conversation_pattern(), count=1000):
            name = _text(key)[prefix:]
            if ":" not in name:
                sids.append(name)
        return sids

    def size(self) -> dict[str, int]:
        """How many conversations and pairs the ledger holds records of (SCAN-based)."""
        pairs = sum(1 for _ in self.redis.scan_iter(match=keys.pair("*"), count=1000))
        return {"conversations": len(self.conversation_sids()), "pairs": pairs}

    # -- counters ------------------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        self.redis.hincrby(keys.counters(), name, amount)

    def counters(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.redis.hgetall(keys.counters()).items()}
