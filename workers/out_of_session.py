"""Out-of-session messages: a customer texts a pool number and no open conversation holds the
pair, so Twilio is about to autocreate a conversation (the `onConversationAdd` pre-event with a
binding). `BINDERY_OUT_OF_SESSION` says what happens:

- `reject` (default): the autocreation is refused; the message goes nowhere.
- `reopen`: the autocreation is refused, and a job opens a new session with the same
  counterparts as the customer's last session in that pool, the customer keeping the number they
  texted (a fixed `proxy_address`); once it is open, the customer's message is posted into it
  (author: the customer), so the counterparts read it.
- `callback`: the autocreation is refused, and a job POSTs `BINDERY_OUT_OF_SESSION_URL` a JSON body
  naming the customer, the pool number, the pool and the message, retried with backoff until the
  app answers 2xx; the app then opens a session through the API.

Why refuse rather than keep the autocreated conversation: an autocreated conversation would hold
the very pair the new session needs (the customer on the number they texted), and it is not a
session (no counterparts, no TTL, nothing the allocator knows of); a message posted before a
counterpart joins is never delivered to that counterpart's phone either. So the message is kept in
the job (Redis, durable, retried) and posted into the session once it opens. Media are not carried
(the pre-event does not give them in a form a new message can reuse).

The pre-event decides only what must be decided there, in one Redis read and one enqueue: is this
a pool number, and which mode (`decide`). Everything else runs in jobs, under a lock per (pool,
customer): whether the customer is in a session after all (their newest session in the pool is
being opened or still open: the message is posted there), which session was the last, opening the
new one, calling the app.
Whatever fails at the pre-event fails open (the web side answers 200), and Twilio then
autocreates the conversation, which keeps the message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from workers import allocation, job_catalog, keys, metrics, pools, sessions
from workers.addresses import mask
from workers.errors import Permanent, Retryable

if TYPE_CHECKING:
    from workers.runtime import Runtime

log = logging.getLogger(__name__)

REJECT, REOPEN, CALLBACK = "reject", "reopen", "callback"
MODES = (REJECT, REOPEN, CALLBACK)

CALLBACK_TIMEOUT = 5.0
"""Seconds the app's URL has to answer one callback."""
DELIVERY_WAIT = 120.0
"""Seconds a reopened session may take to open before its message is given up (and logged)."""
DELIVERY_POLL = 1.0
"""Seconds between two looks at a session being opened, before its message is posted."""
DELIVERED_TTL = 7 * 86400
"""Seconds the mark of a posted message is kept (a retried delivery does not post it twice)."""

_OPEN, _PENDING, CLOSED, FAILED = "open", "pending", "closed", "failed"


@dataclass(frozen=True)
class Decision:
    """What the pre-event answers for a pool number: refused, and the job that follows, if any."""

    pool: str
    mode: str
    job_id: str | None = None

    def answer_body(self) -> dict:
        body: dict[str, Any] = {"reason": "out_of_session", "pool": self.pool, "mode": self.mode}
        if self.job_id:
            body["job_id"] = self.job_id
        return body


# -- at the pre-event ------------------------------------------------------------------------


def decide(rt: Runtime, address: str, proxy_address: str, body: str) -> Decision | None:
    """For the pre-event of an autocreation: None when `proxy_address` is in no pool (not a
    session's business: the autocreation goes ahead as it always did); else the refusal, with the
    job `reopen` and `callback` leave behind."""
    pool = pools.pool_of(rt.connection, proxy_address)
    if pool is None:
        return None
    mode = rt.settings.out_of_session
    job_id = None
    if mode in (REOPEN, CALLBACK):
        job, _ = rt.queue.enqueue(
            job_catalog.OUT_OF_SESSION,
            {
                "mode": mode,
                "pool": pool,
                "address": address,
                "proxy_address": proxy_address,
                "body": body,
                "received_at": rt.clock.now(),
            },
            kind=f"out-of-session:{mode}",
            job_id=job_catalog.out_of_session_job_id(uuid.uuid4().hex),
        )
        job_id = job.id
    metrics.OUT_OF_SESSION.labels(pool, mode).inc()
    log.info(
        "out-of-session message from %s to %s (pool %s): autocreation refused, %s",
        mask(address),
        mask(proxy_address),
        pool,
        {REJECT: "rejected", REOPEN: "reopening", CALLBACK: "calling the app"}[mode]
        + (f" (job {job_id})" if job_id else ""),
    )
    return Decision(pool, mode, job_id)


# -- the job -----------------------------------------------------------------------------------


def handle(
    rt: Runtime,
    mode: str,
    pool: str,
    address: str,
    proxy_address: str,
    body: str,
    received_at: float,
) -> dict:
    """The work a refused autocreation left behind (`reopen` or `callback`), under the lock of the
    (pool, customer), so two messages in a row open one session between them."""
    job_id = _current_job_id()
    with rt.locks() as locks:
        locks.acquire([keys.out_of_session_lock(pool, address)])
        latest = sessions.latest_for(rt.connection, pool, address)
        if latest is not None and _live(latest):
            # The customer's newest session in the pool is being opened (a second text before
            # the first's session opened) or still open (they texted another of its numbers): in
            # session after all. The message goes there; no second session, no callback.
            delivery = _deliver_later(rt, _session_id(latest), address, body, job_id)
            return {"outcome": "in_session", "session_id": _session_id(latest), **delivery}
        if mode == CALLBACK:
            return _call_back(rt, pool, address, proxy_address, body, received_at, latest, job_id)
        if latest is None:
            log.warning(
                "out-of-session message from %s to %s (pool %s) dropped: no previous session",
                mask(address),
                mask(proxy_address),
                pool,
            )
            return {"outcome": "no_previous_session", "pool": pool}
        request = reopen_request(latest, pool, address, proxy_address, idempotency_key=job_id)
        session_id, session_job = sessions.open_session(rt, request)
    delivery = _deliver_later(rt, session_id, address, body, job_id)
    log.info(
        "reopened session %s for %s on %s (pool %s), after session %s",
        session_id,
        mask(address),
        mask(proxy_address),
        pool,
        _session_id(latest),
    )
    return {
        "outcome": "reopened",
        "session_id": session_id,
        "session_job_id": session_job,
        "previous_session_id": _session_id(latest),
        **delivery,
    }


def reopen_request(latest: Any, pool: str, address: str, proxy_address: str, idempotency_key: str):
    """The new session: the customer on the number they texted (fixed); every counterpart of the
    last session again, SMS and WhatsApp ones given a number by the allocation (prefer-sticky: the
    one they had last in the pool, when free), chat identities as they were; the last session's
    ttl and geo match."""
    participants: list[dict] = [{"address": address, "proxy_address": proxy_address}]
    for participant in _participants(latest):
        if participant.get("identity"):
            participants.append({"identity": participant["identity"]})
        elif participant.get("address") and participant["address"] != address:
            participants.append({"address": participant["address"]})
    return sessions.SessionRequest(
        pool=pool,
        participants=tuple(participants),
        ttl=float(_field(latest, "ttl") or 0),
        number_selection=allocation.PREFER_STICKY,
        geo_match=_field(latest, "geo_match") or allocation.DEFAULT_GEO_MATCH,
        idempotency_key=idempotency_key,
    )


def _call_back(
    rt: Runtime,
    pool: str,
    address: str,
    proxy_address: str,
    body: str,
    received_at: float,
    latest: Any,
    job_id: str,
) -> dict:
    payload = callback_body(job_id, pool, address, proxy_address, body, received_at, latest)
    status = post_callback(rt, payload, job_id)
    return {"outcome": "called_back", "status": status, "pool": pool}


def callback_body(
    job_id: str,
    pool: str,
    address: str,
    proxy_address: str,
    body: str,
    received_at: float,
    latest: Any = None,
) -> dict:
    """What the app's URL receives (the numbers in full: the app needs them to open a session)."""
    return {
        "type": "out_of_session",
        "id": job_id,
        "pool": pool,
        "customer": address,
        "pool_number": proxy_address,
        "message": {"body": body, "received_at": _iso(received_at)},
        "last_session_id": _session_id(latest) if latest is not None else None,
    }


def signature(secret: str, raw: bytes) -> str:
    """`X-Bindery-Signature`: HMAC-SHA256 of the raw body with the API token, hex."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post_callback(rt: Runtime, payload: dict, job_id: str) -> int:
    """POST the app's URL; 2xx is done, 408/429/5xx and no answer are retried (the job's
    backoff), any other answer fails the job at once."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": job_id}
    if rt.settings.api_token:
        headers["X-Bindery-Signature"] = signature(rt.settings.api_token, raw)
    url = rt.settings.out_of_session_url
    try:
        response = requests.post(url, data=raw, headers=headers, timeout=CALLBACK_TIMEOUT)
    except requests.RequestException as error:
        raise CallbackUnanswered(
            f"out-of-session callback: no answer ({type(error).__name__})"
        ) from None
    if 200 <= response.status_code < 300:
        return response.status_code
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise CallbackUnanswered(
            f"out-of-session callback: the app answered {response.status_code}"
        )
    raise CallbackRefused(f"out-of-session callback: the app answered {response.status_code}")


class CallbackUnanswered(Retryable):
    """The app's URL did not take the callback (yet): tried again with the job's backoff."""


class CallbackRefused(Permanent):
    """The app's URL refused the callback (a 4xx other than 408 and 429)."""


# -- posting the message once the session is open ------------------------------------------------


def _deliver_later(rt: Runtime, session_id: str, author: str, body: str, origin: str) -> dict:
    job, _ = rt.queue.enqueue(
        job_catalog.OUT_OF_SESSION_DELIVERY,
        {
            "session_id": session_id,
            "author": author,
            "body": body,
            "origin": origin,
            "since": rt.clock.now(),
        },
        kind="out-of-session:deliver",
        job_id=job_catalog.out_of_session_delivery_job_id(origin, session_id, 0),
    )
    return {"delivery_job_id": job.id}


def deliver(
    rt: Runtime,
    session_id: str,
    author: str,
    body: str,
    origin: str,
    since: float,
    attempt: int = 0,
) -> dict:
    """Post the customer's message into the session's conversation once it is open: while it is
    pending, look again in a second (a new delayed job, so no worker waits). If it failed or
    closed while the customer's newest session in the pool is another live one, the message goes
    there; otherwise (or after DELIVERY_WAIT) it is given up, logged."""
    session = sessions.get(rt.connection, session_id)
    status = _status(session) if session is not None else "missing"
    if status == _PENDING and rt.clock.now() - since < DELIVERY_WAIT:
        job, _ = rt.queue.enqueue(
            job_catalog.OUT_OF_SESSION_DELIVERY,
            {
                "session_id": session_id,
                "author": author,
                "body": body,
                "origin": origin,
                "since": since,
                "attempt": attempt + 1,
            },
            kind="out-of-session:deliver",
            job_id=job_catalog.out_of_session_delivery_job_id(origin, session_id, attempt + 1),
            delay=DELIVERY_POLL,
        )
        return {"outcome": "waiting", "next_job_id": job.id}
    if status in (CLOSED, FAILED) and session is not None:
        # Someone else's session for this customer may have won the pair meanwhile (the app
        # opened one while this one waited): the message goes to the customer's live session.
        other = sessions.latest_for(rt.connection, _field(session, "pool") or "", author)
        if other is not None and _live(other) and _session_id(other) != session_id:
            delivery = _deliver_later(rt, _session_id(other), author, body, origin)
            return {"outcome": "redirected", "session_id": _session_id(other), **delivery}
    if status != _OPEN:
        log.warning(
            "out-of-session message from %s not posted: session %s is %s",
            mask(author),
            session_id,
            status,
        )
        return {"outcome": "not_delivered", "session_status": status}
    marker = keys.out_of_session_delivered(origin)
    if rt.connection.exists(marker):
        return {"outcome": "already_delivered"}
    conversation_sid = _conversation_sid(session)
    message_sid = rt.twilio.send_message(
        conversation_sid,
        author,
        body,
        attributes=json.dumps({"bindery": {"out_of_session": origin}}),
    )
    rt.connection.set(marker, message_sid or "1", ex=DELIVERED_TTL)
    return {
        "outcome": "delivered",
        "conversation_sid": conversation_sid,
        "message_sid": message_sid,
    }


# -- reading a session record ------------------------------------------------------------------


def _field(session: Any, name: str, default: Any = None) -> Any:
    if isinstance(session, dict):
        return session.get(name, default)
    return getattr(session, name, default)


def _session_id(session: Any) -> str:
    return str(_field(session, "session_id") or _field(session, "id") or "")


def _status(session: Any) -> str:
    return str(_field(session, "status") or "")


def _conversation_sid(session: Any) -> str:
    return str(_field(session, "conversation_sid") or "")


def _participants(session: Any) -> list[dict]:
    found = []
    for participant in _field(session, "participants") or []:
        found.append(participant if isinstance(participant, dict) else vars(participant))
    return found


def _live(session: Any) -> bool:
    return _status(session) in (_PENDING, _OPEN)


def _current_job_id() -> str:
    from rq import get_current_job

    job = get_current_job()
    return job.id if job is not None else job_catalog.out_of_session_job_id(uuid.uuid4().hex)


def _iso(epoch: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
    )
