"""The binding ledger: what Bindery knows of each conversation, each (address, proxy) pair and each
chat member, so that the common case needs no question to Twilio.

Twilio is the truth; the ledger is what makes the common case cheap, never the sole reason to close,
remove or release. Three rules keep it from going wrong:

- **Ordered by event time.** Every write carries the time of the fact it records (Twilio's clock),
  and participant SIDs where known: a late or repeated event never undoes newer knowledge, a
  removed participant never comes back, and closed (or removed) is final.
- **Compare-and-set.** Each write is one Lua script that checks, in Redis, what it rests on: a
  release only lets go of a pair the conversation still holds; a job's write of a pending mark
  or of a pair's freedom applies only if nobody marked the pair since the job read it.
- **Fenced.** A write made after a Twilio call carries the job's lock tokens (`Fence`); if a lease
  ran out meanwhile (the process stalled, another job took over), the script records the pair or
  member as *pending* instead of writing the job's older view, and `LockLost` is raised: the next
  job asks Twilio before trusting the record.

Pending marks say "a create (or removal) may or may not have happened; ask Twilio". They are set
before a create, by the pre-event for a pair it lets through, and instead of any fenced write whose
lease is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from workers import keys
from workers.errors import LockLost
from workers.states import FINAL_STATES


@dataclass(frozen=True)
class Fence:
    """The locks a job holds, by key and token: a fenced write applies only while all still are
    the job's."""

    keys: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()


NO_FENCE = Fence()


@dataclass(frozen=True)
class PairRecord:
    pair_id: str
    holder: str  # conversation SID, "" when free
    participant_sid: str
    bound_at: float
    released_from: str
    released_at: float
    released_participant: str = ""
    pending: str = ""  # a conversation whose create (or removal) may or may not have happened
    checked_at: float = 0.0
    pending_at: float = 0.0
    pending_by: str = ""  # job (about to create) | pre-event (let an add through) | lost-lease

    @property
    def held(self) -> bool:
        return bool(self.holder)

    def being_added(self, now: float, within: float) -> str:
        """The conversation a job is creating the pair in right now (marked less than `within`
        seconds ago), or ""."""
        if self.pending and self.pending_by == "job" and now - self.pending_at < within:
            return self.pending
        return ""


@dataclass(frozen=True)
class ConversationRecord:
    sid: str
    state: str  # "" when the ledger has never heard of it
    state_at: float
    last_activity: float
    created_at: float
    service_sid: str = ""

    @property
    def known(self) -> bool:
        return bool(self.state)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Member:
    """A chat participant (identity) of one conversation, as the ledger last learned it."""

    identity: str
    status: str
    """present | removed | pending (a job is creating it) | expected (a pre-event let an SDK's
    add through)"""
    participant_sid: str
    at: float

    @property
    def present(self) -> bool:
        return self.status == "present"

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def unsure(self) -> bool:
        """The ledger cannot know without asking Twilio."""
        return self.status in ("present", "pending", "expected")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _number(value: bytes | str | None) -> float:
    return float(_text(value) or 0)


def _member(identity: str, raw: bytes | str | None) -> Member | None:
    if raw is None:
        return None
    status, participant_sid, at = _text(raw).split("|", 2)
    return Member(identity, status, participant_sid, float(at or 0))


# A conversation's pairs are one field of its hash, `pairs`: their ids joined by spaces (a pair id
# never holds a space, `keys.pair_id` escapes it), absent when it holds none. One field rather than a
# set of its own saves a key per conversation: about 280 bytes a conversation in Redis 7.0, where a
# set of strings is a hash table however small.
_PAIR_LIST = """
local function pairs_of(conv_key)
  local ids = {}
  local raw = redis.call('hget', conv_key, 'pairs')
  if raw then
    for id in string.gmatch(raw, '[^ ]+') do table.insert(ids, id) end
  end
  return ids
end
local function add_pair(conv_key, pair_id)
  local ids = pairs_of(conv_key)
  for _, id in ipairs(ids) do
    if id == pair_id then return end
  end
  table.insert(ids, pair_id)
  redis.call('hset', conv_key, 'pairs', table.concat(ids, ' '))
end
local function remove_pair(conv_key, pair_id)
  local kept = {}
  for _, id in ipairs(pairs_of(conv_key)) do
    if id ~= pair_id then table.insert(kept, id) end
  end
  if #kept == 0 then
    redis.call('hdel', conv_key, 'pairs')
  else
    redis.call('hset', conv_key, 'pairs', table.concat(kept, ' '))
  end
end
"""

# Every script starts with the fence: ARGV[1] is the number n of fence keys, KEYS[1..n] the lock
# keys and ARGV[2..n+1] their tokens; the script's own KEYS and ARGV follow.
_FENCE = (
    """
local nf = tonumber(ARGV[1])
local function held()
  for i = 1, nf do
    if redis.call('get', KEYS[i]) ~= ARGV[1 + i] then return false end
  end
  return true
end
local function key(i) return KEYS[nf + i] end
local function arg(i) return ARGV[nf + 1 + i] end
local function final(conv_key)
  local state = redis.call('hget', conv_key, 'state')
  return state == 'closed' or state == 'removed'
end
"""
    + _PAIR_LIST
)

_BIND = (
    _FENCE
    + """
local pair_key, conv_key = key(1), key(2)
local pair_id, sid, psid, at = arg(1), arg(2), arg(3), tonumber(arg(4))
local check, expected, prefix = arg(5), arg(6), arg(7)
if not held() then
  redis.call('hset', pair_key, 'pending', sid, 'pending_at', at, 'pending_by', 'lost-lease')
  return 'lost'
end
local r = redis.call('hmget', pair_key, 'holder', 'participant_sid', 'bound_at', 'released_from',
  'released_at', 'released_participant', 'pending')
local holder, known_psid, bound_at = r[1] or '', r[2] or '', tonumber(r[3] or '0')
local released_from, released_at = r[4] or '', tonumber(r[5] or '0')
local released_psid, pending = r[6] or '', r[7] or ''
if check == '1' and pending ~= expected then return 'changed' end
if psid ~= '' and psid == released_psid then return 'stale' end
if released_from == sid and released_at >= at and (psid == '' or released_psid == '') then
  return 'stale'
end
if holder ~= '' and bound_at > at then return 'stale' end
if final(conv_key) then return 'stale' end
if psid == '' and holder == sid then psid = known_psid end
if holder ~= '' and holder ~= sid then remove_pair(prefix .. 'conv:' .. holder, pair_id) end
redis.call('hset', pair_key, 'holder', sid, 'participant_sid', psid, 'bound_at', at)
if pending == sid or (check == '1' and pending == expected) then
  redis.call('hdel', pair_key, 'pending', 'pending_at', 'pending_by')
end
add_pair(conv_key, pair_id)
redis.call('zrem', prefix .. 'ended', 'pair:' .. pair_id)
return 'ok'
"""
)

_RELEASE = (
    _FENCE
    + """
local pair_key, conv_key = key(1), key(2)
local pair_id, sid, psid, at, prefix = arg(1), arg(2), arg(3), tonumber(arg(4)), arg(5)
if not held() then
  redis.call('hset', pair_key, 'pending', sid, 'pending_at', at, 'pending_by', 'lost-lease')
  return 'lost'
end
local r = redis.call('hmget', pair_key, 'holder', 'participant_sid', 'bound_at', 'released_at',
  'pending')
local holder, known_psid, bound_at = r[1] or '', r[2] or '', tonumber(r[3] or '0')
local released_at, pending = tonumber(r[4] or '0'), r[5] or ''
if holder ~= '' and holder ~= sid then return 'stale' end
if holder == sid then
  if psid ~= '' and known_psid ~= '' and psid ~= known_psid then return 'stale' end
  if psid == '' and bound_at > at then return 'stale' end
  if psid == '' then psid = known_psid end
elseif released_at > at then
  return 'stale'
end
redis.call('hset', pair_key, 'holder', '', 'participant_sid', '', 'released_from', sid,
  'released_at', at, 'released_participant', psid)
if pending == sid then redis.call('hdel', pair_key, 'pending', 'pending_at', 'pending_by') end
remove_pair(conv_key, pair_id)
redis.call('zadd', prefix .. 'ended', at, 'pair:' .. pair_id)
return 'ok'
"""
)

_MARK_FREE = (
    _FENCE
    + """
local pair_key = key(1)
local pair_id, marker, at, expected, prefix = arg(1), arg(2), tonumber(arg(3)), arg(4), arg(5)
if not held() then
  redis.call('hset', pair_key, 'pending', marker, 'pending_at', at, 'pending_by', 'lost-lease')
  return 'lost'
end
local r = redis.call('hmget', pair_key, 'holder', 'pending', 'participant_sid')
local holder, pending, psid = r[1] or '', r[2] or '', r[3] or ''
if pending ~= expected then return 'changed' end
if holder ~= '' then
  remove_pair(prefix .. 'conv:' .. holder, pair_id)
  -- The participant let go of is remembered, as a release does: a new one of the same
  -- conversation bound in the same second is then not mistaken for the old (see _BIND).
  redis.call('hset', pair_key, 'released_from', holder, 'released_at', at,
    'released_participant', psid)
end
redis.call('hset', pair_key, 'holder', '', 'participant_sid', '', 'checked_at', at)
redis.call('hdel', pair_key, 'pending', 'pending_at', 'pending_by')
redis.call('zadd', prefix .. 'ended', at, 'pair:' .. pair_id)
return 'ok'
"""
)

_MARK_PENDING = (
    _FENCE
    + """
local pair_key = key(1)
local sid, at, expected = arg(1), tonumber(arg(2)), arg(3)
if not held() then
  redis.call('hset', pair_key, 'pending', sid, 'pending_at', at, 'pending_by', 'lost-lease')
  return 'lost'
end
local pending = redis.call('hget', pair_key, 'pending') or ''
if pending ~= expected then return 'changed' end
redis.call('hset', pair_key, 'pending', sid, 'pending_at', at, 'pending_by', 'job')
return 'ok'
"""
)

_PRE_EVENT_PENDING = """
local holder = redis.call('hget', KEYS[1], 'holder') or ''
if holder == ARGV[1] then return 'unchanged' end
redis.call('hset', KEYS[1], 'pending', ARGV[1], 'pending_at', ARGV[2], 'pending_by', 'pre-event')
return 'ok'
"""

_CLEAR_PENDING = """
if (redis.call('hget', KEYS[1], 'pending') or '') == ARGV[1] then
  redis.call('hdel', KEYS[1], 'pending', 'pending_at', 'pending_by')
  return 'ok'
end
return 'unchanged'
"""

# Members: `status|participant_sid|at` per identity.
_MEMBER = (
    _FENCE
    + """
local members_key, conv_key = key(1), key(2)
local identity, change, psid, at, expected = arg(1), arg(2), arg(3), tonumber(arg(4)), arg(5)
if not held() then
  redis.call('hset', members_key, identity, 'pending||' .. at)
  return 'lost'
end
if final(conv_key) then return 'stale' end
local raw = redis.call('hget', members_key, identity)
local status, known_psid, known_at = '', '', 0
if raw then
  local first = string.find(raw, '|', 1, true)
  local second = string.find(raw, '|', first + 1, true)
  status = string.sub(raw, 1, first - 1)
  known_psid = string.sub(raw, first + 1, second - 1)
  known_at = tonumber(string.sub(raw, second + 1)) or 0
end
if change == 'present' then
  if psid ~= '' and psid == known_psid and status == 'removed' then return 'stale' end
  if status ~= '' and status ~= 'pending' and status ~= 'expected' and known_at > at
    and psid ~= known_psid then
    return 'stale'
  end
  if psid == '' and status == 'present' then psid = known_psid end
elseif change == 'removed' then
  if status == 'present' and psid ~= '' and known_psid ~= '' and psid ~= known_psid then
    return 'stale'
  end
  if status ~= '' and status ~= 'pending' and status ~= 'expected' and known_at > at then
    return 'stale'
  end
elseif change == 'pending' then
  if expected ~= '*' and status ~= expected then return 'changed' end
  psid = ''
end
redis.call('hset', members_key, identity, change .. '|' .. psid .. '|' .. at)
return 'ok'
"""
)

_EXPECT_MEMBER = """
local raw = redis.call('hget', KEYS[1], ARGV[1])
if raw and string.sub(raw, 1, 8) == 'present|' then return 'unchanged' end
redis.call('hset', KEYS[1], ARGV[1], 'expected||' .. ARGV[2])
return 'ok'
"""

_CLEAR_MEMBER_PENDING = """
local raw = redis.call('hget', KEYS[1], ARGV[1])
if raw and string.sub(raw, 1, 8) == 'pending|' then
  redis.call('hdel', KEYS[1], ARGV[1])
  return 'ok'
end
return 'unchanged'
"""

_SET_STATE = (
    _PAIR_LIST
    + """
local conv_key, members_key = KEYS[1], KEYS[2]
local sid, state, at, authoritative, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local r = redis.call('hmget', conv_key, 'state', 'state_at')
local current, current_at = r[1] or '', tonumber(r[2] or '0')
if current == 'closed' or current == 'removed' then return 'stale' end
local final = state == 'closed' or state == 'removed'
if current ~= '' and at < current_at then
  if authoritative ~= '1' and not final then return 'stale' end
  at = current_at
end
-- Twilio's times have whole seconds: of an active and an inactive seen in the same second, the
-- ledger keeps active (the reading that never leads to an automatic close).
if authoritative ~= '1' and at == current_at and current == 'active' and state == 'inactive' then
  return 'stale'
end
redis.call('hset', conv_key, 'state', state, 'state_at', at)
redis.call('hsetnx', conv_key, 'created_at', at)
redis.call('hsetnx', conv_key, 'last_activity', at)
if final then
  for _, pair_id in ipairs(pairs_of(conv_key)) do
    local pair_key = prefix .. 'pair:' .. pair_id
    local p = redis.call('hmget', pair_key, 'holder', 'pending')
    if (p[1] or '') == sid then
      redis.call('hset', pair_key, 'holder', '', 'participant_sid', '', 'released_from', sid,
        'released_at', at, 'released_participant', '')
      redis.call('zadd', prefix .. 'ended', at, 'pair:' .. pair_id)
    end
    if (p[2] or '') == sid then redis.call('hdel', pair_key, 'pending', 'pending_at', 'pending_by') end
  end
  redis.call('hdel', conv_key, 'pairs')
  redis.call('del', members_key)
  redis.call('zadd', prefix .. 'ended', at, 'conv:' .. sid)
end
return 'ok'
"""
)

# Deletes an ended record if it is still ended and older than the cutoff (ARGV[1]).
_PRUNE = """
local member, cutoff, prefix = ARGV[2], tonumber(ARGV[1]), ARGV[3]
local kind, id = string.match(member, '^(%a+):(.*)$')
if kind == 'conv' then
  local key = prefix .. 'conv:' .. id
  local r = redis.call('hmget', key, 'state', 'state_at')
  if (r[1] == 'closed' or r[1] == 'removed') and tonumber(r[2] or '0') <= cutoff then
    redis.call('del', key, key .. ':members')
  elseif r[1] and r[1] ~= 'closed' and r[1] ~= 'removed' then
    redis.call('zrem', KEYS[1], member)
    return 'kept'
  end
elseif kind == 'pair' then
  local key = prefix .. 'pair:' .. id
  local r = redis.call('hmget', key, 'holder', 'pending', 'released_at', 'checked_at')
  local ended_at = math.max(tonumber(r[3] or '0'), tonumber(r[4] or '0'))
  if (r[1] or '') == '' and (r[2] or '') == '' and ended_at <= cutoff then
    redis.call('del', key)
  elseif (r[1] or '') ~= '' then
    redis.call('zrem', KEYS[1], member)
    return 'kept'
  else
    redis.call('zadd', KEYS[1], ended_at, member)  -- let go again since: its real time
    return 'young'
  end
end
redis.call('zrem', KEYS[1], member)
return 'pruned'
"""

_TOUCH = """
local v = tonumber(redis.call('hget', KEYS[1], 'last_activity') or '0')
if tonumber(ARGV[1]) > v then redis.call('hset', KEYS[1], 'last_activity', ARGV[1]) end
"""


def _conversation_record(sid: str, raw: dict) -> ConversationRecord:
    get = {_text(k): v for k, v in raw.items()}.get
    return ConversationRecord(
        sid=sid,
        state=_text(get("state")),
        state_at=_number(get("state_at")),
        last_activity=_number(get("last_activity")),
        created_at=_number(get("created_at")),
        service_sid=_text(get("service_sid")),
    )


class Ledger:
    def __init__(self, connection: redis.Redis):
        self.redis = connection
        script = connection.register_script
        self._bind = script(_BIND)
        self._release = script(_RELEASE)
        self._mark_free = script(_MARK_FREE)
        self._mark_pending = script(_MARK_PENDING)
        self._pre_event_pending = script(_PRE_EVENT_PENDING)
        self._clear_pending = script(_CLEAR_PENDING)
        self._member = script(_MEMBER)
        self._clear_member_pending = script(_CLEAR_MEMBER_PENDING)
        self._expect_member = script(_EXPECT_MEMBER)
        self._set_state = script(_SET_STATE)
        self._touch = script(_TOUCH)
        self._prune = script(_PRUNE)

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
            released_participant=_text(get("released_participant")),
            pending=_text(get("pending")),
            checked_at=_number(get("checked_at")),
            pending_at=_number(get("pending_at")),
            pending_by=_text(get("pending_by")),
        )

    def conversation(self, sid: str) -> ConversationRecord:
        return _conversation_record(sid, self.redis.hgetall(keys.conversation(sid)))

    def conversations(self, sids: Sequence[str]) -> list[ConversationRecord]:
        """The records of many conversations in one round trip (a scan's page of them)."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hgetall(keys.conversation(sid))
        return [
            _conversation_record(sid, raw) for sid, raw in zip(sids, pipe.execute(), strict=True)
        ]

    def pairs_of(self, sid: str) -> set[str]:
        return set(_text(self.redis.hget(keys.conversation(sid), "pairs")).split())

    def member(self, sid: str, identity: str) -> Member | None:
        return _member(identity, self.redis.hget(keys.conversation_members(sid), identity))

    def members_of(self, sid: str) -> dict[str, Member]:
        raw = self.redis.hgetall(keys.conversation_members(sid))
        members = (_member(_text(k), v) for k, v in raw.items())
        return {m.identity: m for m in members if m is not None}

    def identities_of(self, sid: str) -> set[str]:
        """The chat identities the ledger believes present."""
        return {m.identity for m in self.members_of(sid).values() if m.present}

    def has_identity(self, sid: str, identity: str) -> bool:
        member = self.member(sid, identity)
        return member is not None and member.present

    def conversation_sids(self) -> list[str]:
        """Every conversation the ledger has a record of, or a pair or member set of (a SCAN: for
        operations, not hot paths)."""
        prefix = len(keys.conversation(""))
        sids: set[str] = set()
        for key in self.redis.scan_iter(match=keys.conversation_pattern(), count=1000):
            sids.add(_text(key)[prefix:].split(":", 1)[0])
        return sorted(sids)

    def size(self) -> dict[str, int]:
        """How many conversations and pairs the ledger holds records of (SCAN-based)."""
        pairs = sum(1 for _ in self.redis.scan_iter(match=keys.pair_pattern(), count=1000))
        return {"conversations": len(self.conversation_sids()), "pairs": pairs}

    # -- conversations -------------------------------------------------------------------------

    def record_conversation(self, sid: str, state: str, at: float, service_sid: str = "") -> None:
        """First sighting of a conversation: sets what is not known yet, never overwrites."""
        key = keys.conversation(sid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(key, "state", state)
        pipe.hsetnx(key, "state_at", at)
        pipe.hsetnx(key, "created_at", at)
        pipe.hsetnx(key, "last_activity", at)
        if service_sid:
            pipe.hsetnx(key, "service_sid", service_sid)
        pipe.execute()

    def set_state(self, sid: str, state: str, at: float, authoritative: bool = False) -> bool:
        """Apply a state seen at `at`; False when it is older than what the ledger has, or the
        conversation is closed or removed (final), or an `inactive` of the same second as the
        ledger's `active` (Twilio's whole-second times cannot order them; active is safe). `authoritative`: Twilio was just asked, under
        the conversation's lock, so its answer replaces the ledger's whatever their times (final
        stays final). A final state releases every pair the conversation still holds (and only
        those: a pair bound elsewhere meanwhile is left alone) and forgets its members."""
        result = self._set_state(
            keys=[keys.conversation(sid), keys.conversation_members(sid)],
            args=[sid, state, at, "1" if authoritative else "0", keys.PREFIX],
        )
        return _text(result) == "ok"

    def touch(self, sid: str, at: float) -> None:
        """Record activity (a message, an add) so idle conversations can be told from busy ones;
        the later of the old and new time wins, so a late webhook cannot make a busy one idle."""
        self._touch(keys=[keys.conversation(sid)], args=[at])

    # -- pairs ---------------------------------------------------------------------------------

    def bind(
        self,
        pair_id: str,
        sid: str,
        participant_sid: str,
        at: float,
        fence: Fence = NO_FENCE,
        expected_pending: str | None = None,
    ) -> str:
        """Record that `sid` holds the pair since `at`: `ok`, `stale` (newer knowledge says
        otherwise), or `changed` (with `expected_pending`: the pair was marked since it was
        read). Raises `LockLost` (after marking the pair pending) when the fence no longer holds."""
        return self._run(
            self._bind,
            fence,
            [keys.pair(pair_id), keys.conversation(sid)],
            [
                pair_id,
                sid,
                participant_sid or "",
                at,
                "0" if expected_pending is None else "1",
                expected_pending or "",
                keys.PREFIX,
            ],
        )

    def release(
        self, pair_id: str, sid: str, at: float, participant_sid: str = "", fence: Fence = NO_FENCE
    ) -> str:
        """The pair left `sid` at `at` (participant removed): `ok`, or `stale` when the pair is held
        elsewhere or re-bound since."""
        return self._run(
            self._release,
            fence,
            [keys.pair(pair_id), keys.conversation(sid)],
            [pair_id, sid, participant_sid or "", at, keys.PREFIX],
        )

    def mark_free(
        self, pair_id: str, at: float, fence: Fence, expected_pending: str, marker: str
    ) -> str:
        """Twilio was asked and no open conversation holds the pair: `ok`, or `changed` if the
        pair was marked pending since it was read (a pre-event let an add through: ask again)."""
        return self._run(
            self._mark_free,
            fence,
            [keys.pair(pair_id)],
            [pair_id, marker, at, expected_pending, keys.PREFIX],
        )

    def mark_pending(
        self, pair_id: str, sid: str, at: float, fence: Fence, expected_pending: str
    ) -> str:
        """A create of the pair in `sid` is about to be sent. Until its answer is recorded the
        ledger cannot know whether it happened (the worker may die, the call may time out), so the
        next job for the pair asks Twilio. `changed` if someone else marked it since it was read."""
        return self._run(
            self._mark_pending, fence, [keys.pair(pair_id)], [sid, at, expected_pending]
        )

    def mark_pending_for_pre_event(self, pair_id: str, sid: str, at: float) -> None:
        """A pre-event let an add of the pair to `sid` through: until its post-event arrives, a
        job for the pair must ask Twilio (one write, no lock: the pre-event has a time budget)."""
        self._pre_event_pending(keys=[keys.pair(pair_id)], args=[sid, at])

    def clear_pending(self, pair_id: str, sid: str) -> None:
        """The create in `sid` was refused: nothing happened (a mark of someone else's stays)."""
        self._clear_pending(keys=[keys.pair(pair_id)], args=[sid])

    # -- members -------------------------------------------------------------------------------

    def member_added(
        self, sid: str, identity: str, participant_sid: str, at: float, fence: Fence = NO_FENCE
    ) -> str:
        return self._member_change(sid, identity, "present", participant_sid, at, fence)

    def member_removed(
        self, sid: str, identity: str, participant_sid: str, at: float, fence: Fence = NO_FENCE
    ) -> str:
        return self._member_change(sid, identity, "removed", participant_sid, at, fence)

    def member_pending(
        self, sid: str, identity: str, at: float, fence: Fence, expected_status: str
    ) -> str:
        """As `mark_pending`, for a chat participant's create: `changed` when the member's status
        is no longer `expected_status` (the job's read; "" for none), e.g. a pre-event let an SDK
        add of it through meanwhile."""
        return self._member_change(sid, identity, "pending", "", at, fence, expected_status)

    def member_expected_from_pre_event(self, sid: str, identity: str, at: float) -> None:
        """A pre-event let an SDK's add of `identity` through: until its post-event arrives, a job
        adding it asks Twilio first (one write, no lock)."""
        self._expect_member(keys=[keys.conversation_members(sid)], args=[identity, at])

    def clear_member_pending(self, sid: str, identity: str) -> None:
        self._clear_member_pending(keys=[keys.conversation_members(sid)], args=[identity])

    def _member_change(
        self,
        sid: str,
        identity: str,
        change: str,
        participant_sid: str,
        at: float,
        fence: Fence,
        expected_status: str = "*",
    ) -> str:
        return self._run(
            self._member,
            fence,
            [keys.conversation_members(sid), keys.conversation(sid)],
            [identity, change, participant_sid or "", at, expected_status],
        )

    # -- pruning -------------------------------------------------------------------------------

    def prune(self, older_than: float, batch: int = 500) -> int:
        """Delete the records of conversations closed, and pairs let go, before `older_than`
        (epoch seconds), each only if it still is (a pair bound again is kept); how many were."""
        pruned = 0
        while True:
            members = self.redis.zrangebyscore(keys.ended(), "-inf", older_than, 0, batch)
            if not members:
                return pruned
            for member in members:
                result = self._prune(keys=[keys.ended()], args=[older_than, member, keys.PREFIX])
                pruned += _text(result) == "pruned"

    # -- trust ---------------------------------------------------------------------------------

    def note_reconciled(self, at: float) -> None:
        """A full reconcile has compared every conversation with Twilio."""
        self.redis.set(keys.reconciled(), repr(at))

    def reconciled_at(self) -> float:
        return _number(self.redis.get(keys.reconciled()))

    # -- counters ------------------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        self.redis.hincrby(keys.counters(), name, amount)

    def counters(self) -> dict[str, int]:
        return {_text(k): int(v) for k, v in self.redis.hgetall(keys.counters()).items()}

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _run(script, fence: Fence, own_keys: Sequence[str], own_args: Sequence) -> str:
        result = _text(
            script(
                keys=[*fence.keys, *own_keys],
                args=[len(fence.keys), *fence.tokens, *own_args],
            )
        )
        if result == "lost":
            raise LockLost("a lease ran out before the ledger write; recorded as pending")
        return result
