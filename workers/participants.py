"""Adding a participant without ever attempting a duplicate binding.

Under the conversation's lock and the pair's lock, the ledger decides; Twilio is asked only when the
ledger cannot know (a pair it has never seen, or a holder a conflict policy is about to act on), and
written to only for what is missing. Correctness does not rest on the locks alone: every write is
preceded by `locks.refresh()` (so a lost lease stops the job before it writes), 50437 and 50433 are
taken as `already_present`, and a 50416 that still happens is reconciled: its holder is recorded,
counted, and the conflict policy applied.

Outcomes: `added`, `already_present`, `conflict_resolved` (with `resolution` and `holder`), and
`conflict` (with `holder`): a business answer, not a failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from workers import keys
from workers.addresses import mask
from workers.gateway import Holding, Permanent, holder_from_message
from workers.ledger import PairRecord
from workers.locks import Locks
from workers.runtime import Runtime

log = logging.getLogger(__name__)

CONVERSATION_CLOSED = 50377
PAIR_HELD_ELSEWHERE = 50416
PAIR_ALREADY_HERE = 50437
IDENTITY_ALREADY_HERE = 50433
NOT_FOUND = (20404, 50350)


@dataclass(frozen=True)
class AddRequest:
    conversation_sid: str
    address: str = ""
    proxy_address: str = ""
    identity: str = ""
    policy: str = ""

    @property
    def pair_id(self) -> str:
        return keys.pair_id(self.address, self.proxy_address)

    def describe(self) -> str:
        if self.identity:
            return f"identity {self.identity}"
        return f"pair {mask(self.address)}|{mask(self.proxy_address)}"


def add_participant(rt: Runtime, request: AddRequest) -> dict:
    with rt.locks() as locks:
        names = [keys.conversation_lock(request.conversation_sid)]
        if not request.identity:
            names.append(keys.pair_lock(request.pair_id))
        locks.acquire(names)
        if rt.ledger.conversation(request.conversation_sid).final:
            raise Permanent(
                CONVERSATION_CLOSED, 400, f"conversation {request.conversation_sid} is closed"
            )
        if request.identity:
            return _add_identity(rt, locks, request)
        return _add_pair(rt, locks, request)


def _outcome(outcome: str, request: AddRequest, **extra) -> dict:
    return {"outcome": outcome, "conversation_sid": request.conversation_sid, **extra}


def _add_identity(rt: Runtime, locks: Locks, request: AddRequest) -> dict:
    conversation, identity = request.conversation_sid, request.identity
    if rt.ledger.has_identity(conversation, identity):
        rt.ledger.count("duplicate_attempts_avoided")
        return _outcome("already_present", request)
    if rt.ledger.identity_pending(conversation, identity):
        # An earlier create has no recorded answer (its worker died, or it timed out): ask.
        present = [p for p in rt.gateway.participants(conversation) if p.identity == identity]
        if present:
            rt.ledger.add_identity(conversation, identity)
            rt.ledger.count("duplicate_attempts_avoided")
            return _outcome("already_present", request, participant_sid=present[0].sid)
    locks.refresh()
    rt.ledger.mark_identity_pending(conversation, identity)
    try:
        participant = rt.gateway.add_chat_participant(conversation, identity)
    except Permanent as error:
        if error.code == IDENTITY_ALREADY_HERE:
            rt.ledger.add_identity(conversation, identity)
            rt.ledger.count("already_present_at_twilio")
            return _outcome("already_present", request)
        rt.ledger.clear_identity_pending(conversation, identity)
        _note_closed(rt, conversation, error)
        raise
    now = rt.gateway.now()
    rt.ledger.record_conversation(conversation, "active", now)
    rt.ledger.add_identity(conversation, identity)
    rt.ledger.touch(conversation, now)
    return _outcome("added", request, participant_sid=participant.sid)


def _add_pair(rt: Runtime, locks: Locks, request: AddRequest) -> dict:
    conversation, pair_id = request.conversation_sid, request.pair_id
    resolution: dict = {}
    # A 50416 sends the loop round again: once to learn the holder, once to apply the policy.
    for _ in range(3):
        record = rt.ledger.pair(pair_id)
        if record is None or record.pending:
            record = _learn_pair(rt, request)
        if record.holder == conversation:
            rt.ledger.count("duplicate_attempts_avoided")
            return _outcome("already_present", request, participant_sid=record.participant_sid)
        if record.held:
            answer, resolution = _resolve_conflict(rt, locks, request, record.holder)
            if answer is not None:
                return answer
        locks.refresh()
        rt.ledger.mark_pending(pair_id, conversation, rt.gateway.now())
        try:
            participant = rt.gateway.add_sms_participant(
                conversation, request.address, request.proxy_address
            )
        except Permanent as error:
            if error.code == PAIR_ALREADY_HERE:
                rt.ledger.bind(pair_id, conversation, "", rt.gateway.now())
                rt.ledger.count("already_present_at_twilio")
                return _outcome("already_present", request)
            holder = holder_from_message(error.message)
            if error.code == PAIR_HELD_ELSEWHERE and holder:
                rt.ledger.count("reconciled_50416")
                log.warning("50416 reconciled: %s is held by %s", request.describe(), holder)
                rt.ledger.bind(pair_id, holder, "", rt.gateway.now())
                continue
            rt.ledger.clear_pending(pair_id)
            _note_closed(rt, conversation, error)
            raise
        now = rt.gateway.now()
        rt.ledger.record_conversation(conversation, "active", now)
        rt.ledger.bind(pair_id, conversation, participant.sid, now)
        rt.ledger.touch(conversation, now)
        if resolution:
            rt.ledger.count("conflicts_resolved")
            return _outcome(
                "conflict_resolved", request, participant_sid=participant.sid, **resolution
            )
        return _outcome("added", request, participant_sid=participant.sid)
    raise Permanent(PAIR_HELD_ELSEWHERE, 409, f"{request.describe()} kept moving between holders")


def _learn_pair(rt: Runtime, request: AddRequest) -> PairRecord:
    """A pair the ledger has never seen, or whose last create has no recorded answer: ask Twilio
    once, and remember the answer."""
    holdings = rt.gateway.holdings(request.address, request.proxy_address)
    now = rt.gateway.now()
    if not holdings:
        rt.ledger.mark_free(request.pair_id, now)
        return PairRecord(request.pair_id, "", "", 0.0, "", 0.0)
    holding = holdings[0]
    rt.ledger.bind(request.pair_id, holding.conversation_sid, holding.participant_sid, now)
    return PairRecord(
        request.pair_id, holding.conversation_sid, holding.participant_sid, now, "", 0.0
    )


def _resolve_conflict(
    rt: Runtime, locks: Locks, request: AddRequest, ledger_holder: str
) -> tuple[dict | None, dict]:
    """The ledger says another conversation holds the pair. Confirm it with Twilio, then apply the
    policy. Returns (answer, resolution): an answer ends the job; otherwise the pair is now free
    and `resolution` says how it was freed."""
    pair_id, conversation = request.pair_id, request.conversation_sid
    holdings = rt.gateway.holdings(request.address, request.proxy_address)
    now = rt.gateway.now()
    if not holdings:
        # The ledger missed a close or a removal (a lost webhook): repair it and go on.
        rt.ledger.release(pair_id, ledger_holder, now)
        rt.ledger.count("ledger_repaired")
        return None, {}
    holding = holdings[0]
    holder = holding.conversation_sid
    if holder != ledger_holder:
        rt.ledger.count("ledger_repaired")
    rt.ledger.bind(pair_id, holder, holding.participant_sid, now)
    if holder == conversation:
        return _outcome("already_present", request, participant_sid=holding.participant_sid), {}

    policy = request.policy or rt.settings.conflict_policy
    if policy == "reject":
        rt.ledger.count("conflicts")
        return _outcome("conflict", request, holder=holder, policy=policy), {}
    if policy == "reuse":
        rt.ledger.count("conflicts_resolved")
        return _outcome(
            "conflict_resolved",
            request,
            resolution="reuse",
            holder=holder,
            participant_sid=holding.participant_sid,
        ), {}
    if policy == "close-stale" and not _is_stale(rt, holding, now):
        rt.ledger.count("conflicts")
        return _outcome(
            "conflict", request, holder=holder, policy=policy, holder_state=holding.state
        ), {}

    # close-stale (the holder is stale) or move: act on the holder under its lock too.
    locks.acquire([keys.conversation_lock(holder)])
    locks.refresh()
    if policy == "move":
        try:
            rt.gateway.remove_participant(holder, holding.participant_sid)
        except Permanent as error:
            if error.code not in NOT_FOUND:
                raise
        rt.ledger.release(pair_id, holder, rt.gateway.now())
    else:
        try:
            rt.gateway.set_state(holder, "closed")
        except Permanent as error:
            if error.code not in (CONVERSATION_CLOSED, *NOT_FOUND):
                raise
        rt.ledger.set_state(holder, "closed", rt.gateway.now())
    log.info("conflict on %s resolved by %s of %s", request.describe(), policy, holder)
    return None, {"resolution": policy, "holder": holder}


def _is_stale(rt: Runtime, holding: Holding, now: float) -> bool:
    if holding.state == "inactive":
        return True
    last = max(holding.date_updated, rt.ledger.conversation(holding.conversation_sid).last_activity)
    return now - last > rt.settings.stale_after


def _note_closed(rt: Runtime, conversation: str, error: Permanent) -> None:
    """Twilio said the conversation is closed: the ledger learns it, so no later job asks again."""
    if error.code == CONVERSATION_CLOSED:
        rt.ledger.set_state(conversation, "closed", rt.gateway.now())
