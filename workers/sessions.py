"""Masked-number sessions: a conversation Bindery creates for two or more participants, each
customer given a proxy number from a pool (`workers/allocation.py`), as Twilio Proxy's Sessions did.

`open_session` records the session (pending) and enqueues its job; the job, under the session's
lock:

1. reserves a proxy for each customer (the same atomic step for a proxy the request fixed);
2. creates the conversation (unique name `bindery-<session id>`, so a retried job finds the one
   it made; Twilio's own timer `Timers.Closed` = the session's ttl, when given);
3. adds each participant through the same participant-add as every add (`workers/participants.py`:
   the conversation's and the pair's locks, the ledger, Twilio asked when the ledger cannot know),
   with the policy `reject`: a session never touches another conversation. A pair found held
   there is known to the ledger from then on, and the customer is given another number;
4. marks the session open, or failed (naming the customer, masked, and the pool when the pool has
   no number left for it, like Proxy's 80206), closing the conversation it created and letting go
   of every reservation.

A session follows its conversation: closed by Twilio's timer, by `DELETE /api/v1/sessions/<id>`
(the state-change path, `workers/states.py`) or by anyone, the post-event (or, when no webhook
comes, a check at the ttl, or the ledger read with the session) marks it closed and ends its
numbers' use. The record is kept `BINDERY_PRUNE_AFTER` after it ends: sticky selection and "the
same counterpart as last time" (`latest_for`) read it.

A session's id comes from its `unique_name` (within its pool), else its `idempotency_key`, else is
new: a second request with either gets the first session.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import redis

from workers import allocation, errors, job_catalog, keys, metrics, participants, pools, states
from workers.addresses import E164_CHANNELS, address_problem, channel, mask, pair_problem
from workers.ledger import Ledger
from workers.logs import iso_time
from workers.settings import SettingsError, parse_duration

if TYPE_CHECKING:
    from workers.runtime import Runtime

log = logging.getLogger(__name__)

PENDING, OPEN, CLOSED, FAILED = "pending", "open", "closed", "failed"
STATUSES = (PENDING, OPEN, CLOSED, FAILED)
MIN_TTL = 600
"""Seconds: Twilio's minimum for a conversation's `Timers.Closed`."""
MAX_PARTICIPANTS = 50
MAX_UNIQUE_NAME = 191
"""Characters, as Proxy's unique names."""
UNIQUE_NAME_PREFIX = "bindery-"
"""The conversation of session BS... is named `bindery-BS...` in Twilio."""
ENDED_CHECKS = 24
"""Times the check at the ttl looks again at a conversation still open (a message re-arms
Twilio's timer) before it leaves the session to the post-event."""


class RequestProblem(ValueError):
    """A session request Bindery refuses: `field` names what is wrong."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name


@dataclass(frozen=True)
class SessionRequest:
    pool: str
    participants: tuple[dict, ...]
    """`{"address"}` (a customer: Bindery picks the proxy), `{"address", "proxy_address"}` (a
    customer with this proxy), or `{"identity"}` (chat)."""
    ttl: float = 0.0
    """Seconds until Twilio closes the conversation (0: never)."""
    number_selection: str = allocation.DEFAULT_SELECTION
    geo_match: str = allocation.DEFAULT_GEO_MATCH
    unique_name: str = ""
    idempotency_key: str = ""

    def session_id(self) -> str:
        if self.unique_name:
            return _derived_id("unique", self.pool, self.unique_name)
        if self.idempotency_key:
            return _derived_id("key", self.idempotency_key)
        return "BS" + uuid.uuid4().hex

    @classmethod
    def from_body(cls, body: dict) -> SessionRequest:
        """The request from the API's JSON (or the CLI's), checked; `RequestProblem` otherwise."""
        allowed = {
            "pool",
            "participants",
            "ttl",
            "number_selection",
            "geo_match",
            "unique_name",
            "idempotency_key",
        }
        for name in sorted(set(body) - allowed):
            raise RequestProblem(name, "is not a known field")
        pool = body.get("pool", "default")
        if (problem := pools.name_problem(pool)) is not None:
            raise RequestProblem("pool", problem)
        selection = _choice(body, "number_selection", allocation.SELECTIONS)
        geo = _choice(body, "geo_match", allocation.GEO_MATCHES)
        unique_name = _text_field(body, "unique_name", MAX_UNIQUE_NAME)
        key = _text_field(body, "idempotency_key", 200)
        return cls(
            pool=pool,
            participants=tuple(_participants(body.get("participants"))),
            ttl=_ttl(body.get("ttl")),
            number_selection=selection or allocation.DEFAULT_SELECTION,
            geo_match=geo or allocation.DEFAULT_GEO_MATCH,
            unique_name=unique_name,
            idempotency_key=key,
        )


def _derived_id(*parts: str) -> str:
    return "BS" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _choice(body: dict, name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if value not in allowed:
        raise RequestProblem(name, "must be one of " + ", ".join(allowed))
    return value


def _text_field(body: dict, name: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or not value:
        raise RequestProblem(name, "must be a non-empty string")
    if len(value) > limit:
        raise RequestProblem(name, f"is longer than {limit} characters")
    if any(ch.isspace() and ch != " " or ord(ch) < 32 for ch in value):
        raise RequestProblem(name, "contains control characters")
    return value


def _ttl(value) -> float:
    if value is None or value == 0:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RequestProblem("ttl", "must be a duration like 2h or 90m, or seconds")
    try:
        seconds = parse_duration(str(value), "ttl")
    except SettingsError:
        raise RequestProblem("ttl", "must be a duration like 2h or 90m, or seconds") from None
    if seconds < MIN_TTL:
        raise RequestProblem("ttl", f"must be at least {MIN_TTL // 60}m (Twilio's minimum)")
    return float(int(seconds))


def _participants(value) -> list[dict]:
    if not isinstance(value, list) or len(value) < 2:
        raise RequestProblem("participants", "must be a list of two or more participants")
    if len(value) > MAX_PARTICIPANTS:
        raise RequestProblem("participants", f"must have at most {MAX_PARTICIPANTS}")
    found: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(value):
        where = f"participants[{index}]"
        if not isinstance(item, dict):
            raise RequestProblem(where, "must be an object")
        for name in sorted(set(item) - {"address", "proxy_address", "identity"}):
            raise RequestProblem(f"{where}.{name}", "is not a known field")
        for name in item:
            if not isinstance(item[name], str):
                raise RequestProblem(f"{where}.{name}", "must be a string")
        identity, address = item.get("identity", ""), item.get("address", "")
        proxy = item.get("proxy_address", "")
        if identity:
            if address or proxy:
                raise RequestProblem(where, "give identity, or address (and proxy_address)")
            if len(identity) > 256:
                raise RequestProblem(f"{where}.identity", "is longer than 256 characters")
            entry, seen_as = {"identity": identity}, ("identity", identity)
        else:
            if not address:
                raise RequestProblem(f"{where}.address", "is required (or give identity)")
            if proxy:
                problem = pair_problem(address, proxy)
                if problem:
                    raise RequestProblem(f"{where}.{problem[0]}", problem[1])
            elif (problem := address_problem(address)) is not None:
                raise RequestProblem(f"{where}.address", problem)
            if channel(address) not in E164_CHANNELS:
                raise RequestProblem(
                    f"{where}.address", "must be an SMS number or a whatsapp: address"
                )
            entry = {"address": address}
            if proxy:
                entry["proxy_address"] = proxy
            seen_as = ("address", address)
        if seen_as in seen:
            raise RequestProblem(f"{where}.{seen_as[0]}", "appears twice in the session")
        seen.add(seen_as)
        found.append(entry)
    if not any("address" in p for p in found):
        raise RequestProblem("participants", "must include at least one customer (address)")
    return found


# -- the record --------------------------------------------------------------------------------


@dataclass
class Session:
    session_id: str
    pool: str
    status: str
    participants: list[dict]
    """As the job made them: customers with `address`, `proxy_address` (once chosen), `fixed`
    (the request gave it), `participant_sid` (once added); chat with `identity`."""
    ttl: float = 0.0
    number_selection: str = allocation.DEFAULT_SELECTION
    geo_match: str = allocation.DEFAULT_GEO_MATCH
    unique_name: str = ""
    idempotency_key: str = ""
    conversation_sid: str = ""
    error: str = ""
    error_code: int = 0
    failing: str = ""
    """JSON of a failure decided but not finished (the conversation still to be closed)."""
    created_at: float = 0.0
    opened_at: float = 0.0
    closed_at: float = 0.0
    job_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def customers(self) -> list[dict]:
        return [p for p in self.participants if "address" in p]

    def to_dict(self) -> dict:
        """What `GET /api/v1/sessions/<id>` answers."""
        shown = []
        for p in self.participants:
            if "identity" in p:
                shown.append(
                    {"identity": p["identity"], "participant_sid": p.get("participant_sid") or None}
                )
            else:
                shown.append(
                    {
                        "address": p["address"],
                        "proxy_address": p.get("proxy_address") or None,
                        "participant_sid": p.get("participant_sid") or None,
                    }
                )
        return {
            "session_id": self.session_id,
            "pool": self.pool,
            "status": self.status,
            "conversation_sid": self.conversation_sid or None,
            "participants": shown,
            "error": self.error or None,
            "error_code": self.error_code or None,
            "ttl": int(self.ttl) or None,
            "number_selection": self.number_selection,
            "geo_match": self.geo_match,
            "unique_name": self.unique_name or None,
            "job_id": self.job_id or None,
            "created_at": iso_time(self.created_at) if self.created_at else None,
            "opened_at": iso_time(self.opened_at) if self.opened_at else None,
            "closed_at": iso_time(self.closed_at) if self.closed_at else None,
        }


_FIELDS = (
    "session_id",
    "pool",
    "status",
    "ttl",
    "number_selection",
    "geo_match",
    "unique_name",
    "idempotency_key",
    "conversation_sid",
    "error",
    "error_code",
    "failing",
    "created_at",
    "opened_at",
    "closed_at",
    "job_id",
)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _load(connection: redis.Redis, session_id: str) -> Session | None:
    raw = connection.hgetall(keys.session(session_id))
    if not raw:
        return None
    get = {_text(k): _text(v) for k, v in raw.items()}.get
    return Session(
        session_id=get("session_id") or session_id,
        pool=get("pool") or "",
        status=get("status") or PENDING,
        participants=json.loads(get("participants") or "[]"),
        ttl=float(get("ttl") or 0),
        number_selection=get("number_selection") or allocation.DEFAULT_SELECTION,
        geo_match=get("geo_match") or allocation.DEFAULT_GEO_MATCH,
        unique_name=get("unique_name") or "",
        idempotency_key=get("idempotency_key") or "",
        conversation_sid=get("conversation_sid") or "",
        error=get("error") or "",
        error_code=int(get("error_code") or 0),
        failing=get("failing") or "",
        created_at=float(get("created_at") or 0),
        opened_at=float(get("opened_at") or 0),
        closed_at=float(get("closed_at") or 0),
        job_id=get("job_id") or "",
    )


def _fields(record: Session) -> dict:
    values = asdict(record)
    stored = {name: values[name] for name in _FIELDS}
    stored["participants"] = json.dumps(record.participants)
    return {k: ("" if v is None else v) for k, v in stored.items()}


def _save(connection: redis.Redis, record: Session, *names: str) -> None:
    values = _fields(record)
    chosen = {n: values[n] for n in names} if names else values
    connection.hset(keys.session(record.session_id), mapping=chosen)


def get(connection: redis.Redis, session_id: str) -> dict | None:
    """The session as the API answers it, or None. A session whose conversation the ledger knows
    ended is reported (and recorded) closed."""
    record = _load(connection, session_id)
    if record is None:
        return None
    _follow_ledger(connection, record)
    return record.to_dict()


def load(connection: redis.Redis, session_id: str) -> Session | None:
    """The record itself (participants with their internal fields)."""
    return _load(connection, session_id)


def latest_for(connection: redis.Redis, pool: str, address: str) -> dict | None:
    """The newest session of the pool that included this customer (kept after it ended), as
    `get` gives it, or None."""
    session_id = _text(connection.get(keys.customer_latest(pool, address)))
    return get(connection, session_id) if session_id else None


def session_of(connection: redis.Redis, conversation_sid: str) -> str:
    """The id of the session whose conversation this is, or ""."""
    return _text(connection.get(keys.conversation_session(conversation_sid)))


# -- opening -------------------------------------------------------------------------------------

_CREATE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local n = tonumber(ARGV[1])
for i = 1, n do
  redis.call('hset', KEYS[1], ARGV[2 * i], ARGV[2 * i + 1])
end
local keep = tonumber(ARGV[2 * n + 2])
for i = 2, #KEYS do
  redis.call('set', KEYS[i], ARGV[2 * n + 3])
  if keep > 0 then redis.call('expire', KEYS[i], keep) end
end
return 1
"""


@dataclass(frozen=True)
class Opened:
    session_id: str
    job_id: str
    duplicate: bool


def start(rt: Runtime, request: SessionRequest) -> Opened:
    """Record the session (unless its id is taken: then it is the answer) and enqueue its job."""
    session_id = request.session_id()
    job_id = job_catalog.session_open_job_id(session_id)
    record = Session(
        session_id=session_id,
        pool=request.pool,
        status=PENDING,
        participants=[
            dict(p) | ({"fixed": True} if "proxy_address" in p else {})
            for p in request.participants
        ],
        ttl=request.ttl,
        number_selection=request.number_selection,
        geo_match=request.geo_match,
        unique_name=request.unique_name,
        idempotency_key=request.idempotency_key,
        created_at=time.time(),
        job_id=job_id,
    )
    values = _fields(record)
    flat: list = []
    for name, value in values.items():
        flat += [name, value]
    latest = [keys.customer_latest(request.pool, p["address"]) for p in record.customers]
    keep = int(rt.settings.prune_after)
    created = rt.connection.register_script(_CREATE)(
        keys=[keys.session(session_id), *latest],
        args=[len(values), *flat, keep, session_id],
    )
    existing = _load(rt.connection, session_id) if not created else record
    if existing is not None and existing.status == PENDING:
        # Enqueued once (RQ's unique enqueue): a second request re-enqueues only a job lost
        # between the record and the queue.
        rt.queue.enqueue(
            job_catalog.SESSION_OPEN,
            {"session_id": session_id},
            kind="session-open",
            job_id=job_id,
        )
    return Opened(session_id, existing.job_id if existing else job_id, not created)


def open_session(rt: Runtime, request: SessionRequest) -> tuple[str, str]:
    """(session id, job id): the session recorded and its job enqueued (or the first session with
    the same unique name or idempotency key)."""
    opened = start(rt, request)
    return opened.session_id, opened.job_id


class _Failed(Exception):
    def __init__(self, message: str, code: int = 0, exhausted_pool: str = ""):
        super().__init__(message)
        self.code = code
        self.exhausted_pool = exhausted_pool


def run_opening(rt: Runtime, session_id: str) -> dict:
    """The session's job: reserve, create, add, open (or fail); see the module's docstring."""
    with rt.locks() as locks:
        locks.acquire([keys.session_lock(session_id)])
        record = _load(rt.connection, session_id)
        if record is None:
            return {"outcome": "missing", "session_id": session_id}
        if record.status != PENDING:
            return {"outcome": record.status, "session_id": session_id}
        if record.failing:
            failure = json.loads(record.failing)
            return _finish_failure(rt, record, failure["error"], failure["code"])
        try:
            _Opening(rt, record).run()
        except _Failed as failure:
            if failure.exhausted_pool:
                metrics.POOL_EXHAUSTED.labels(failure.exhausted_pool).inc()
                rt.ledger.count("pool_exhausted")
            record.failing = json.dumps({"error": str(failure), "code": failure.code})
            _save(rt.connection, record, "failing", "participants")
            log.warning("session %s failed: %s", session_id, failure)
            return _finish_failure(rt, record, str(failure), failure.code)
        metrics.SESSIONS.labels(OPEN).inc()
        return {
            "outcome": OPEN,
            "session_id": session_id,
            "conversation_sid": record.conversation_sid,
        }


class _Opening:
    def __init__(self, rt: Runtime, record: Session):
        self.rt = rt
        self.record = record

    def _save(self, *names: str) -> None:
        _save(self.rt.connection, self.record, *names)

    def run(self) -> None:
        record = self.record
        for participant in record.customers:
            if not participant.get("participant_sid"):  # added by an earlier attempt: bound
                self._reserve(participant)
        self._save("participants")
        if not record.conversation_sid:
            self._create_conversation()
        for participant in record.participants:
            if participant.get("participant_sid"):
                continue
            if "identity" in participant:
                self._add_identity(participant)
            else:
                self._add_customer(participant)
            self._save("participants")
        for participant in record.customers:  # each use lasts as long as the session now
            allocation.release(
                self.rt.connection,
                record.session_id,
                participant["address"],
                participant["proxy_address"],
                opened=True,
            )
        record.status = OPEN
        record.opened_at = time.time()
        self._save("status", "opened_at")
        if record.ttl:
            schedule_check(self.rt, record.session_id, record.ttl + 60, 1)

    def _reserve(self, participant: dict, exclude: tuple[str, ...] = ()) -> None:
        record, rt = self.record, self.rt
        customer = participant["address"]
        proxy = participant.get("proxy_address", "")
        if proxy and not exclude:
            if allocation.reserve_fixed(
                rt, record.session_id, record.pool, customer, proxy, record.conversation_sid
            ):
                return
            if participant.get("fixed"):
                raise _Failed(self._fixed_refusal(customer, proxy))
        try:
            participant["proxy_address"] = allocation.allocate(
                rt,
                record.session_id,
                record.pool,
                customer,
                selection=record.number_selection,
                geo_match=record.geo_match,
                conversation_sid=record.conversation_sid,
                exclude=exclude,
            )
        except allocation.Exhausted as exhausted:
            participant.pop("proxy_address", None)
            raise _Failed(
                f"{exhausted} (like Twilio Proxy's {allocation.NO_PROXY_AVAILABLE})",
                allocation.NO_PROXY_AVAILABLE,
                exhausted_pool=record.pool,
            ) from None

    def _fixed_refusal(self, customer: str, proxy: str) -> str:
        where = pools.pool_of(self.rt.connection, proxy)
        if where != self.record.pool:
            return f"proxy_address {mask(proxy)} is not a number of pool {self.record.pool}"
        return (
            f"the pair {mask(customer)}|{mask(proxy)} is in another open conversation, or "
            "reserved by a session being opened"
        )

    def _create_conversation(self) -> None:
        record, rt = self.record, self.rt
        unique = UNIQUE_NAME_PREFIX + record.session_id
        timer = f"PT{int(record.ttl)}S" if record.ttl else ""
        try:
            conversation = rt.twilio.create_conversation(
                unique_name=unique,
                friendly_name=record.unique_name or f"session {record.session_id}",
                timers_closed=timer,
            )
        except errors.TwilioRefused as error:
            if error.code != errors.UNIQUE_NAME_TAKEN:
                raise _Failed(f"Twilio refused the conversation: {error}", error.code) from None
            conversation = rt.twilio.fetch_conversation(unique)  # made by this job's last attempt
        rt.ledger.record_conversation(
            conversation.sid,
            conversation.state or states.ACTIVE,
            conversation.date_created or rt.clock.now(),
            conversation.service_sid,
        )
        rt.connection.set(keys.conversation_session(conversation.sid), record.session_id)
        record.conversation_sid = conversation.sid
        self._save("conversation_sid")

    def _add(self, **participant) -> dict:
        try:
            return participants.add_participant(
                self.rt, self.record.conversation_sid, policy="reject", **participant
            )
        except errors.ConversationClosed:
            raise _Failed(
                "the session's conversation was closed while it was being opened",
                errors.CONVERSATION_CLOSED,
            ) from None
        except errors.TwilioRefused as error:
            raise _Failed(f"Twilio refused a participant: {error}", error.code) from None

    def _add_identity(self, participant: dict) -> None:
        answer = self._add(identity=participant["identity"])
        participant["participant_sid"] = answer.get("participant_sid") or "?"

    def _add_customer(self, participant: dict) -> None:
        record, rt = self.record, self.rt
        customer = participant["address"]
        refused: list[str] = []
        for _ in range(len(pools.numbers(rt.connection, record.pool)) + 2):
            proxy = participant["proxy_address"]
            if not allocation.reserve_fixed(
                rt, record.session_id, record.pool, customer, proxy, record.conversation_sid
            ):
                # The reservation lapsed and someone took the pair meanwhile: choose again.
                if participant.get("fixed"):
                    raise _Failed(self._fixed_refusal(customer, proxy))
                refused.append(proxy)
                self._reserve(participant, exclude=tuple(refused))
                self._save("participants")
                continue
            answer = self._add(address=customer, proxy_address=proxy)
            if answer["outcome"] in ("added", "already_present"):
                participant["participant_sid"] = answer.get("participant_sid") or "?"
                allocation.release(rt.connection, record.session_id, customer, proxy, opened=True)
                return
            # `conflict`: Twilio has the pair in another conversation (the ledger knows it now).
            log.info(
                "session %s: %s|%s is held by %s; choosing another number",
                record.session_id,
                mask(customer),
                mask(proxy),
                answer.get("holder", "?"),
            )
            allocation.release(rt.connection, record.session_id, customer, proxy)
            if participant.get("fixed"):
                raise _Failed(
                    f"the pair {mask(customer)}|{mask(proxy)} is held by conversation "
                    f"{answer.get('holder', '?')}",
                    errors.PAIR_HELD_ELSEWHERE,
                )
            refused.append(proxy)
            self._reserve(participant, exclude=tuple(refused))
            self._save("participants")
        raise errors.Retryable(f"session {record.session_id}: the pool kept changing")


def _finish_failure(rt: Runtime, record: Session, message: str, code: int) -> dict:
    """Close the conversation the session made (through the state-change path), let go of every
    reservation and use, and record the failure."""
    if record.conversation_sid:
        states.change_state(rt, record.conversation_sid, states.CLOSED, reason="session failed")
    _end(rt.connection, record, FAILED, rt.settings.prune_after, error=message, code=code)
    metrics.SESSIONS.labels(FAILED).inc()
    return {"outcome": FAILED, "session_id": record.session_id, "error": message, "code": code}


def _end(
    connection: redis.Redis,
    record: Session,
    status: str,
    keep_for: float | None,
    error: str = "",
    code: int = 0,
) -> None:
    for participant in record.customers:
        proxy = participant.get("proxy_address")
        if proxy:
            allocation.release(connection, record.session_id, participant["address"], proxy)
    record.status = status
    record.closed_at = record.closed_at or time.time()
    record.error, record.error_code = error or record.error, code or record.error_code
    record.failing = ""
    _save(connection, record, "status", "closed_at", "error", "error_code", "failing")
    if keep_for:
        connection.expire(keys.session(record.session_id), int(keep_for))
        for participant in record.customers:
            latest = keys.customer_latest(record.pool, participant["address"])
            if _text(connection.get(latest)) == record.session_id:
                connection.expire(latest, int(keep_for))
        if record.conversation_sid:
            connection.expire(keys.conversation_session(record.conversation_sid), int(keep_for))


def _follow_ledger(connection: redis.Redis, record: Session) -> None:
    """An open session whose conversation the ledger knows ended is closed."""
    if record.status != OPEN or not record.conversation_sid:
        return
    if Ledger(connection).conversation(record.conversation_sid).final:
        _end(connection, record, CLOSED, None)


# -- closing -------------------------------------------------------------------------------------


def close(rt: Runtime, session_id: str) -> tuple[str, str]:
    """Ask for the session to be closed: (status now, job id, "" when there is nothing to do)."""
    record = _load(rt.connection, session_id)
    if record is None:
        raise KeyError(session_id)
    _follow_ledger(rt.connection, record)
    if record.status in (CLOSED, FAILED):
        return record.status, ""
    job, _ = rt.queue.enqueue(
        job_catalog.SESSION_CLOSE,
        {"session_id": session_id},
        kind="session-close",
        job_id=job_catalog.session_close_job_id(session_id),
    )
    return record.status, job.id


def run_closing(rt: Runtime, session_id: str) -> dict:
    """The close job: under the session's lock (after its opening, if one runs), the conversation
    is closed through the state-change path, then the session."""
    with rt.locks() as locks:
        locks.acquire([keys.session_lock(session_id)])
        record = _load(rt.connection, session_id)
        if record is None:
            return {"outcome": "missing", "session_id": session_id}
        if record.status in (CLOSED, FAILED):
            return {"outcome": "unchanged", "session_id": session_id, "status": record.status}
        if record.conversation_sid:
            states.change_state(
                rt, record.conversation_sid, states.CLOSED, reason=f"session {session_id} closed"
            )
        _end(rt.connection, record, CLOSED, rt.settings.prune_after)
        metrics.SESSIONS.labels(CLOSED).inc()
        return {"outcome": CLOSED, "session_id": session_id}


def conversation_ended(rt: Runtime, conversation_sid: str) -> bool:
    """A post-event says the conversation closed (or was removed): its session, if it has one and
    is open, is closed. A session still opening is left to its job (whose adds now fail)."""
    session_id = session_of(rt.connection, conversation_sid)
    if not session_id:
        return False
    record = _load(rt.connection, session_id)
    if record is None or record.status != OPEN:
        return False
    _end(rt.connection, record, CLOSED, rt.settings.prune_after)
    metrics.SESSIONS.labels(CLOSED).inc()
    return True


def schedule_check(rt: Runtime, session_id: str, delay: float, check: int) -> None:
    rt.queue.enqueue(
        job_catalog.SESSION_CHECK,
        {"session_id": session_id, "check": check},
        kind="session-check",
        job_id=job_catalog.session_check_job_id(session_id, check),
        delay=delay,
    )


def check_ended(rt: Runtime, session_id: str, check: int = 1) -> dict:
    """At the ttl (and every ttl after, a few times): is the conversation closed, by Twilio's
    word under its lock? For a session whose post-event never came."""
    record = _load(rt.connection, session_id)
    if record is None or record.status != OPEN:
        return {"outcome": "unchanged", "session_id": session_id}
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(record.conversation_sid)])
        service = rt.ledger.conversation(record.conversation_sid).service_sid
        current = states.reread(rt, record.conversation_sid, service)
    if current is None or current.state == states.CLOSED:
        _end(rt.connection, record, CLOSED, rt.settings.prune_after)
        metrics.SESSIONS.labels(CLOSED).inc()
        return {"outcome": CLOSED, "session_id": session_id}
    if check < ENDED_CHECKS and record.ttl:
        schedule_check(rt, session_id, record.ttl, check + 1)
    return {"outcome": "still_open", "session_id": session_id, "state": current.state}


def settle_number(connection: redis.Redis, number: str) -> None:
    """Follow the ledger for every open session that uses the number (before its use is counted)."""
    for session_id in pools.sessions_using(connection, number):
        record = _load(connection, session_id)
        if record is None:
            continue
        if record.status in (CLOSED, FAILED):
            _end(connection, record, record.status, None)
        else:
            _follow_ledger(connection, record)


def settle_pool(connection: redis.Redis, pool: str) -> None:
    """`settle_number` for each number of the pool."""
    for number in pools.numbers(connection, pool):
        settle_number(connection, number)
