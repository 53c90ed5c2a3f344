"""Pools of proxy numbers, in Redis: the numbers a session's customers are given a proxy from.

A pool is a name and its numbers (SMS numbers in E.164, or `whatsapp:` senders), each with its
labels: country (ISO 3166-1 alpha-2) and area code, read from the number when not given
(`workers/geography.py`). A number belongs to one pool at most (as a Twilio number belongs to one
Proxy Service). Every change is one atomic step in Redis, against the allocation
(`workers/allocation.py`), which reserves a number only while it is still in its pool:

- a number that open (or opening) sessions use is never removed, nor dropped by a replacement:
  refused, naming how many sessions use it (close them, or let them end, first);
- adding a number that is in another pool is refused, naming that pool.

Each number's use is a sorted set (`keys.number_usage`): one member per session participant
given it, scored by when the use lapses: the reservation's end for a session being opened (so a
job that died lets go by itself), `inf` once the session is open, removed when it closes or fails.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import redis

from workers import geography, keys
from workers.addresses import E164_CHANNELS, address_problem, channel

POOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
COUNTRY = re.compile(r"[A-Z]{2}")
AREA_CODE = re.compile(r"[0-9]{1,6}")


class PoolError(Exception):
    """A pool change refused: `status` is the HTTP answer (400, 404, 409), `field` what it names."""

    def __init__(self, status: int, message: str, field: str = "", sessions: int = 0):
        super().__init__(message)
        self.status = status
        self.field = field
        self.sessions = sessions


@dataclass(frozen=True)
class PoolNumber:
    number: str
    country: str = ""
    area_code: str = ""
    sessions: int = 0
    """Open (or opening) sessions using it, when read with `show`."""

    def labels(self) -> str:
        return f"{self.country}|{self.area_code}"

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "country": self.country,
            "area_code": self.area_code,
            "sessions": self.sessions,
        }


def name_problem(name: str) -> str | None:
    if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
        return "must be 1 to 64 letters, digits, '-' or '_'"
    return None


def check_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise PoolError(400, f"pool: {problem}", "pool")
    return name


def number_problem(number: str) -> str | None:
    """Why this cannot be a pool number, or None."""
    if not isinstance(number, str):
        return "must be a string"
    problem = address_problem(number)
    if problem:
        return problem
    if channel(number) not in E164_CHANNELS:
        return "must be an SMS number (+1...) or a WhatsApp sender (whatsapp:+1...)"
    return None


def make_number(number: str, country: str = "", area_code: str = "", field: str = "number"):
    """A pool number with its labels, checked; labels not given are read from the number."""
    problem = number_problem(number)
    if problem:
        raise PoolError(400, f"{field}: {problem}", field)
    if country and not COUNTRY.fullmatch(country):
        raise PoolError(400, "country: must be two capital letters (ISO 3166-1)", "country")
    if area_code and not AREA_CODE.fullmatch(area_code):
        raise PoolError(400, "area_code: must be 1 to 6 digits", "area_code")
    where = geography.place(number)
    return PoolNumber(number, country or where.country, area_code or where.area_code)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _parse(number: str, labels: str) -> PoolNumber:
    country, _, area_code = labels.partition("|")
    return PoolNumber(number, country, area_code)


# -- reads -------------------------------------------------------------------------------------


def names(connection: redis.Redis) -> list[str]:
    return sorted(_text(n) for n in connection.smembers(keys.pools()))


def exists(connection: redis.Redis, name: str) -> bool:
    return bool(connection.sismember(keys.pools(), name))


def numbers(connection: redis.Redis, name: str) -> dict[str, PoolNumber]:
    """The pool's numbers and their labels (no use counts)."""
    raw = connection.hgetall(keys.pool(name))
    return {_text(n): _parse(_text(n), _text(v)) for n, v in raw.items()}


def pool_of(connection: redis.Redis, number: str) -> str | None:
    """The pool the proxy number belongs to, or None."""
    found = connection.hget(keys.number_pools(), number)
    return _text(found) if found is not None else None


def users(connection: redis.Redis, number: str) -> list[tuple[str, str]]:
    """(session id, customer address) of every live use of the number."""
    members = connection.zrangebyscore(keys.number_usage(number), _now_ms(), "+inf")
    return [keys.split_pair_id(_text(member)) for member in members]


def usage_member(session_id: str, address: str) -> str:
    """The member of `keys.number_usage` for one participant of a session (a session id holds no
    `|`, and the address is escaped as in a pair id)."""
    return keys.pair_id(session_id, address)


def sessions_using(connection: redis.Redis, number: str) -> set[str]:
    return {session_id for session_id, _ in users(connection, number)}


def show(connection: redis.Redis, name: str) -> list[PoolNumber] | None:
    """The pool's numbers, each with how many open (or opening) sessions use it; None when there
    is no such pool."""
    if not exists(connection, name):
        return None
    found = numbers(connection, name)
    return [
        PoolNumber(n.number, n.country, n.area_code, len(sessions_using(connection, n.number)))
        for n in sorted(found.values(), key=lambda n: n.number)
    ]


# -- changes -----------------------------------------------------------------------------------

_ADD = """
local pool_key, pools_key, owners_key = KEYS[1], KEYS[2], KEYS[3]
local name, number, labels = ARGV[1], ARGV[2], ARGV[3]
local owner = redis.call('hget', owners_key, number)
if owner and owner ~= name then return {'other', owner} end
local created = redis.call('hset', pool_key, number, labels)
redis.call('hset', owners_key, number, name)
redis.call('sadd', pools_key, name)
if created == 1 then return {'created', name} end
return {'updated', name}
"""

_REMOVE = """
local pool_key, owners_key, usage_key = KEYS[1], KEYS[2], KEYS[3]
local number, now = ARGV[1], tonumber(ARGV[2])
if redis.call('hexists', pool_key, number) == 0 then return {'missing', 0} end
redis.call('zremrangebyscore', usage_key, '-inf', '(' .. now)
local used = redis.call('zcard', usage_key)
if used > 0 then return {'in_use', used} end
redis.call('hdel', pool_key, number)
redis.call('hdel', owners_key, number)
return {'removed', 0}
"""


def add(connection: redis.Redis, name: str, number: PoolNumber) -> bool:
    """Add the number (or change its labels); True when it was new to the pool. The pool is
    created if need be. PoolError 409 when the number is in another pool."""
    check_name(name)
    result, owner = connection.register_script(_ADD)(
        keys=[keys.pool(name), keys.pools(), keys.number_pools()],
        args=[name, number.number, number.labels()],
    )
    if _text(result) == "other":
        raise PoolError(409, f"number {number.number} is in pool {_text(owner)}", "number")
    return _text(result) == "created"


def remove(connection: redis.Redis, name: str, number: str) -> None:
    """Take the number out of the pool. PoolError 404 when it is not there, 409 while sessions
    use it (`sessions`: how many uses)."""
    check_name(name)
    result, used = connection.register_script(_REMOVE)(
        keys=[keys.pool(name), keys.number_pools(), keys.number_usage(number)],
        args=[number, _now_ms()],
    )
    result = _text(result)
    if result == "missing":
        raise PoolError(404, f"number {number} is not in pool {name}", "number")
    if result == "in_use":
        in_use = len(sessions_using(connection, number)) or int(used)
        raise PoolError(
            409,
            f"number {number} is used by {in_use} open session(s): close them (DELETE "
            "/api/v1/sessions/<id>) or let them end, then remove it",
            "number",
            sessions=in_use,
        )


def put(connection: redis.Redis, name: str, entries: list[PoolNumber]) -> bool:
    """Create the pool, or replace its numbers with `entries`; True when it was new. Atomic
    against allocations and other changes (a WATCHed transaction): PoolError 409 when a number
    dropped is in use, or a number given is in another pool."""
    check_name(name)
    wanted = {e.number: e for e in entries}
    created = []

    def replace(pipe: redis.client.Pipeline) -> None:
        current = {_text(n) for n in pipe.hkeys(keys.pool(name))}
        dropped = sorted(current - set(wanted))
        usage = [keys.number_usage(n) for n in dropped]
        if usage:
            pipe.watch(*usage)
        for number in wanted:
            owner = pipe.hget(keys.number_pools(), number)
            if owner is not None and _text(owner) != name:
                raise PoolError(409, f"number {number} is in pool {_text(owner)}", "numbers")
        now = _now_ms()
        for number, key in zip(dropped, usage, strict=True):
            if pipe.zcount(key, now, "+inf"):
                in_use = len(sessions_using(connection, number))
                raise PoolError(
                    409,
                    f"number {number} is used by {in_use} open session(s) and would be "
                    "dropped: close them first",
                    "numbers",
                    sessions=in_use,
                )
        created[:] = [not pipe.sismember(keys.pools(), name)]
        pipe.multi()
        pipe.delete(keys.pool(name))
        if wanted:
            pipe.hset(keys.pool(name), mapping={n: e.labels() for n, e in wanted.items()})
        for number in dropped:
            pipe.hdel(keys.number_pools(), number)
        if wanted:
            pipe.hset(keys.number_pools(), mapping=dict.fromkeys(wanted, name))
        pipe.sadd(keys.pools(), name)

    connection.transaction(replace, keys.pool(name), keys.number_pools())
    return created[0]
