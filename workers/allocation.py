"""Choosing a customer's proxy number from a pool: one atomic step in Redis that reserves the pair
(customer, proxy) or fails, so two sessions opened at the same instant for the same customer, in
any number of processes, never get the same pair.

Python orders the candidates (the pool's numbers of the customer's channel that match its place,
`geo_match`; the customer's last proxy first for `prefer-sticky`, last for `avoid-sticky`, the rest
shuffled so that load spreads over the pool); one Lua script then takes the first candidate that,
in Redis at that moment:

- is still in the pool;
- no conversation holds with this customer in the ledger (`workers/ledger.py`: a holder), and no
  create or pre-event has marked pending in the last `PENDING_BLOCKS_FOR` seconds (an older mark
  is a create whose answer was lost: the add asks Twilio before it acts on it);
- no other session has reserved (`keys.reservation`, with a TTL);

and reserves it for the session: the reservation (for `BINDERY_RESERVATION_TTL`), the number's use
(`keys.number_usage`, scored by the same end), and the customer's sticky number. A pair this
session already holds or has pending in its own conversation is its own again (a job retried after
its worker died). What the ledger cannot know (a pair bound in Twilio behind Bindery's back, in the
verifying ledger mode) the session's add finds out under the pair's lock, through the same
participant-add as every add (`workers/participants.py`, policy `reject`): the ledger then knows the
holder, and the session allocates again.

Reservations never leak: they are dropped when the pair is bound (the ledger holds it then), when
the session fails or closes, and otherwise lapse with their TTL, so a job SIGKILLed mid-way lets go
by itself; RQ retries it, and the retry re-reserves what it had (or allocates again).
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from workers import geography, keys, metrics, pools
from workers.addresses import channel, mask

if TYPE_CHECKING:
    from workers.runtime import Runtime

PREFER_STICKY, AVOID_STICKY = "prefer-sticky", "avoid-sticky"
SELECTIONS = (PREFER_STICKY, AVOID_STICKY)
DEFAULT_SELECTION = PREFER_STICKY
"""As Twilio Proxy's `NumberSelectionBehavior`."""
GEO_COUNTRY, GEO_AREA_CODE, GEO_NONE = "country", "area-code", "none"
GEO_MATCHES = (GEO_COUNTRY, GEO_AREA_CODE, GEO_NONE)
DEFAULT_GEO_MATCH = GEO_NONE
PENDING_BLOCKS_FOR = 300.0
"""Seconds a pending mark (a create in flight, an add a pre-event let through) keeps a pair from
being chosen; an older mark is a create whose answer was lost, and the add asks Twilio."""
CHUNK = 25
"""Candidates one run of the script looks at (each is three keys); the next run takes the next."""
NO_PROXY_AVAILABLE = 80206
"""Twilio Proxy's code for the same answer ("No Available Proxy")."""


class Exhausted(Exception):
    """No number of the pool can be given to the customer: a business answer, like Proxy's 80206."""

    code = NO_PROXY_AVAILABLE

    def __init__(self, customer: str, pool: str, why: str):
        super().__init__(f"no proxy number of pool {pool} is available for {mask(customer)}: {why}")
        self.customer = customer
        self.pool = pool
        self.why = why


_RESERVE = """
local sticky_key, pool_key = KEYS[1], KEYS[2]
local session, member, conversation = ARGV[1], ARGV[2], ARGV[3]
local ttl, now_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local twilio_now, window, n = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local keep = tonumber(ARGV[9])
for i = 1, n do
  local number = ARGV[9 + i]
  local pair_key, reservation_key, usage_key = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local p = redis.call('hmget', pair_key, 'holder', 'pending', 'pending_at')
  local holder, pending, pending_at = p[1] or '', p[2] or '', tonumber(p[3] or '0')
  local reserved = redis.call('get', reservation_key)
  local ours = conversation ~= '' and (holder == conversation or pending == conversation)
  local free = ours
  if not free then
    free = holder == '' and (pending == '' or pending_at < twilio_now - window)
      and (not reserved or reserved == session)
      and redis.call('hexists', pool_key, number) == 1
  end
  if free then
    redis.call('set', reservation_key, session, 'PX', ttl)
    redis.call('zadd', usage_key, now_ms + ttl, member)
    redis.call('set', sticky_key, number)
    if keep > 0 then redis.call('expire', sticky_key, keep) end
    return number
  end
end
return false
"""

_RELEASE = """
local reservation_key, usage_key = KEYS[1], KEYS[2]
local session, member, keep = ARGV[1], ARGV[2], ARGV[3]
if redis.call('get', reservation_key) == session then redis.call('del', reservation_key) end
if keep == 'open' then
  redis.call('zadd', usage_key, 'inf', member)
else
  redis.call('zrem', usage_key, member)
end
return 'ok'
"""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def ordered_candidates(
    connection,
    pool: str,
    customer: str,
    selection: str = DEFAULT_SELECTION,
    geo_match: str = DEFAULT_GEO_MATCH,
    exclude: tuple[str, ...] = (),
    rng: random.Random | None = None,
) -> tuple[list[str], str]:
    """The numbers worth trying, in order, and why there are none when the list is empty."""
    numbers = pools.numbers(connection, pool)
    if not numbers:
        return [], "the pool has no numbers"
    kind = channel(customer)
    fitting = [n for n in numbers.values() if channel(n.number) == kind]
    if not fitting:
        return [], f"none of its {len(numbers)} numbers is a {kind} sender"
    where = geography.place(customer)
    if geo_match == GEO_COUNTRY:
        fitting = [n for n in fitting if where.country and n.country == where.country]
        if not fitting:
            return [], f"none of its numbers is in the customer's country ({where.country or '?'})"
    elif geo_match == GEO_AREA_CODE:
        fitting = [
            n
            for n in fitting
            if where.area_code and (n.country, n.area_code) == (where.country, where.area_code)
        ]
        if not fitting:
            return [], (
                f"none of its numbers has the customer's area code "
                f"({where.country or '?'} {where.area_code or '?'})"
            )
    order = sorted(n.number for n in fitting if n.number not in exclude)
    (rng or random).shuffle(order)
    sticky = _text(connection.get(keys.customer_sticky(pool, customer)))
    if sticky in order:
        order.remove(sticky)
        order = [sticky, *order] if selection == PREFER_STICKY else [*order, sticky]
    if not order:
        return [], "every number that fits was refused for it in this session"
    return order, (
        f"each of the {len(order)} number(s) that fit is in an open conversation with this "
        "customer, or reserved by a session being opened"
    )


def reserve(
    rt: Runtime,
    session_id: str,
    pool: str,
    customer: str,
    candidates: list[str],
    conversation_sid: str = "",
) -> str:
    """The first candidate free for the customer, reserved for the session (one atomic step), or
    "" when none is."""
    started = time.perf_counter()
    script = rt.connection.register_script(_RESERVE)
    chosen = ""
    # In chunks: the first candidates are nearly always free, and a script's keys are sent whole.
    for first in range(0, len(candidates), CHUNK):
        chunk = candidates[first : first + CHUNK]
        script_keys = [keys.customer_sticky(pool, customer), keys.pool(pool)]
        for number in chunk:
            pair = keys.pair_id(customer, number)
            script_keys += [keys.pair(pair), keys.reservation(pair), keys.number_usage(number)]
        chosen = _text(
            script(
                keys=script_keys,
                args=[
                    session_id,
                    pools.usage_member(session_id, customer),
                    conversation_sid,
                    int(rt.settings.reservation_ttl * 1000),
                    int(time.time() * 1000),
                    rt.clock.now(),
                    PENDING_BLOCKS_FOR,
                    len(chunk),
                    int(rt.settings.prune_after),
                    *chunk,
                ],
            )
        )
        if chosen:
            break
    metrics.ALLOCATION_SECONDS.observe(time.perf_counter() - started)
    return chosen


def allocate(
    rt: Runtime,
    session_id: str,
    pool: str,
    customer: str,
    *,
    selection: str = DEFAULT_SELECTION,
    geo_match: str = DEFAULT_GEO_MATCH,
    conversation_sid: str = "",
    exclude: tuple[str, ...] = (),
    rng: random.Random | None = None,
) -> str:
    """A proxy number of the pool for the customer, reserved for the session; `Exhausted` when
    none is free."""
    candidates, why = ordered_candidates(
        rt.connection, pool, customer, selection, geo_match, exclude, rng
    )
    chosen = reserve(rt, session_id, pool, customer, candidates, conversation_sid)
    if not chosen:
        raise Exhausted(customer, pool, why)
    return chosen


def reserve_fixed(
    rt: Runtime, session_id: str, pool: str, customer: str, number: str, conversation_sid: str = ""
) -> str:
    """Reserve the pair (customer, number) for the session, as `allocate` would have chosen it:
    the number, or "" when it is out of the pool or the pair is held or reserved by another. Also
    renews a reservation the session has (a retry)."""
    return reserve(rt, session_id, pool, customer, [number], conversation_sid)


def release(connection, session_id: str, customer: str, number: str, opened: bool = False) -> None:
    """Let go of the session's reservation of the pair. `opened`: the pair is bound (the ledger
    holds it), and its use of the number lasts until the session ends; otherwise the use ends."""
    pair = keys.pair_id(customer, number)
    connection.register_script(_RELEASE)(
        keys=[keys.reservation(pair), keys.number_usage(number)],
        args=[session_id, pools.usage_member(session_id, customer), "open" if opened else "end"],
    )


def reserved_by(connection, customer: str, number: str) -> str:
    """The session that reserved the pair, or ""."""
    return _text(connection.get(keys.reservation(keys.pair_id(customer, number))))
