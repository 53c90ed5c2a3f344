"""Adding a participant without ever attempting a duplicate binding.

Under the conversation's lock (and the pair's, for an SMS or WhatsApp pair) the job decides on what
the ledger knows and asks Twilio when the ledger cannot know or is about to be believed. A job that
finds one of them held waits in its line, not in its worker (`workers/waiters.py`):

- The ledger says the participant is already here: Twilio is asked whether it still is (one read),
  so an add after a removal Bindery never heard of is made again; `already_present` otherwise.
- The ledger has never seen the pair, or the pair is pending (a create whose answer was never
  recorded, or a pre-event that let an add through), or another conversation holds it: Twilio's
  ParticipantConversations are read, in every Conversation Service of the account, and remembered.
- Another conversation holds it: the conflict policy decides. `reject` (outcome `conflict`),
  `reuse` (the holder is the answer), `close-stale` (close the holder if Twilio's facts, re-read
  under the holder's lock, say it is idle longer than `BINDERY_STALE_AFTER`; else `conflict`),
  `move` (remove the participant from the holder, as Twilio lists it under the holder's lock).
- Otherwise, the create: the pair is marked pending first (compare-and-set: if a pre-event marked
  it meanwhile, Twilio is asked again). 50437 and 50433 mean `already_present`. A 50416 that still
  happens is reconciled: its holder is recorded and counted; the policy is applied once if a lookup
  can see that holder, and a holder no lookup can see is believed (`conflict`), never retried in the
  same job.

Every ledger write after a Twilio call is fenced by the job's locks (`workers/ledger.py`), and every
Twilio write is preceded by `locks.refresh()`, so a job whose lease ran out stops instead of acting
on an older view.

Outcomes: `added`, `already_present`, `conflict_resolved` (with `resolution` and `holder`), and
`conflict` (with `holder` and a `reason`): a business answer, not a failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers import errors, keys, staleness, states, waiters
from workers.addresses import mask
from workers.gateway import Holding, Participant, holder_from_message
from workers.ledger import PairRecord

if TYPE_CHECKING:
    from workers.locks import Locks
    from workers.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ROUNDS = 4
"""Looks at the pair one job takes at most (a pre-event's mark or a 50416 sends it round again)."""
MAX_CREATES = 2
"""Creates one job sends at most: the first, and one after a holder it could see was dealt with."""
AUTOCREATION = "autocreation"
"""The pending mark of a pair an inbound message's pre-event is about to autocreate."""


@dataclass(frozen=True)
class AddRequest:
    conversation_sid: str
    address: str = ""
    proxy_address: str = ""
    identity: str = ""
    policy: str = ""
    projected_address: str = ""

    @property
    def pair_id(self) -> str:
        return keys.pair_id(self.address, self.proxy_address)

    @property
    def is_pair(self) -> bool:
        return bool(self.address and self.proxy_address)

    def describe(self) -> str:
        if self.identity:
            return f"identity {self.identity}"
        if not self.proxy_address:
            return f"address {mask(self.address)}"
        return f"pair {mask(self.address)}|{mask(self.proxy_address)}"


def add_participant(
    rt: Runtime,
    conversation_sid: str,
    address: str = "",
    proxy_address: str = "",
    identity: str = "",
    policy: str = "",
    projected_address: str = "",
) -> dict:
    """Add a chat participant (identity; with a projected address in a group MMS), an
    SMS/WhatsApp/Messenger pair, or a group-MMS address, never attempting a duplicate binding."""
    request = AddRequest(
        conversation_sid, address, proxy_address, identity, policy, projected_address
    )
    with rt.locks() as locks:
        names = [keys.conversation_lock(conversation_sid)]
        if request.is_pair:
            names.append(keys.pair_lock(request.pair_id))
        locks.acquire(names, waiter=waiters.current())  # busy: wait in line, not in a worker
        if rt.ledger.conversation(conversation_sid).final:
            raise errors.ConversationClosed(conversation_sid)
        if request.identity:
            return _add_identity(rt, locks, request)
        if not request.is_pair:
            return _add_address(rt, locks, request)
        return _PairAdd(rt, locks, request).run()


def _outcome(outcome: str, request: AddRequest, **extra) -> dict:
    return {"outcome": outcome, "conversation_sid": request.conversation_sid, **extra}


def trusts_ledger(rt: Runtime) -> bool:
    """`BINDERY_LEDGER_MODE=trust`, and a full reconcile has seeded the ledger: what it has never
    seen is free, what it holds here is here (post-events keep it true)."""
    return rt.settings.ledger_mode == "trust" and rt.ledger.reconciled_at() > 0


def _service(rt: Runtime, conversation_sid: str) -> str:
    return rt.ledger.conversation(conversation_sid).service_sid


def _closed_at_twilio(rt: Runtime, conversation_sid: str) -> errors.ConversationClosed:
    """Twilio said 50377: the ledger learns it, so no later job asks again."""
    rt.ledger.set_state(conversation_sid, states.CLOSED, rt.clock.now(), authoritative=True)
    return errors.ConversationClosed(conversation_sid)


# -- chat participants ------------------------------------------------------------------------


def _add_identity(rt: Runtime, locks: Locks, request: AddRequest) -> dict:
    for _ in range(MAX_ROUNDS):
        answer = _identity_round(rt, locks, request)
        if answer is not None:
            return answer
    raise errors.Retryable(f"{request.describe()} kept changing while being added")


def _identity_round(rt: Runtime, locks: Locks, request: AddRequest) -> dict | None:
    conversation, identity = request.conversation_sid, request.identity
    service = _service(rt, conversation)
    member = rt.ledger.member(conversation, identity)
    if member is not None and member.present and trusts_ledger(rt):
        rt.ledger.count("duplicate_attempts_avoided")
        return _outcome("already_present", request, participant_sid=member.participant_sid)
    status = member.status if member is not None else ""
    if member is not None and member.unsure:
        # Believed present, a create with no recorded answer, or an SDK add let through: ask.
        here = [p for p in rt.twilio.participants(conversation, service) if p.identity == identity]
        if here:
            rt.ledger.member_added(
                conversation, identity, here[0].sid, rt.clock.now(), locks.fence()
            )
            rt.ledger.count("duplicate_attempts_avoided")
            return _outcome("already_present", request, participant_sid=here[0].sid)
        if member.present:
            rt.ledger.member_removed(
                conversation, identity, member.participant_sid, rt.clock.now(), locks.fence()
            )
            rt.ledger.count("ledger_repaired")
            status = "removed"
    locks.refresh()
    marked = rt.ledger.member_pending(
        conversation, identity, rt.clock.now(), locks.fence(), expected_status=status
    )
    if marked == "changed":
        return None  # a pre-event let an SDK add of it through meanwhile: look again
    try:
        participant = rt.twilio.add_chat_participant(
            conversation, identity, service, request.projected_address
        )
    except errors.TwilioRefused as error:
        if error.code == errors.IDENTITY_ALREADY_HERE:
            rt.ledger.member_added(conversation, identity, "", rt.clock.now(), locks.fence())
            rt.ledger.count("already_present_at_twilio")
            return _outcome("already_present", request)
        rt.ledger.clear_member_pending(conversation, identity)
        if error.code == errors.CONVERSATION_CLOSED:
            raise _closed_at_twilio(rt, conversation) from error
        raise
    _record_added(rt, conversation, participant)
    rt.ledger.member_added(
        conversation, identity, participant.sid, _when(rt, participant), locks.fence()
    )
    return _outcome("added", request, participant_sid=participant.sid)


def _when(rt: Runtime, participant: Participant) -> float:
    return participant.date_created or rt.clock.now()


def _record_added(rt: Runtime, conversation: str, participant: Participant) -> None:
    at = _when(rt, participant)
    rt.ledger.record_conversation(conversation, states.ACTIVE, at)
    rt.ledger.touch(conversation, at)


# -- group-MMS participants (an address, no proxy) -----------------------------------------------


def _add_address(rt: Runtime, locks: Locks, request: AddRequest) -> dict:
    """No pair, so no binding rule across conversations: Twilio's own answer decides, and a
    participant already there (50437) is `already_present`."""
    conversation = request.conversation_sid
    locks.refresh()
    try:
        participant = rt.twilio.add_sms_participant(
            conversation, request.address, "", _service(rt, conversation)
        )
    except errors.TwilioRefused as error:
        if error.code == errors.PAIR_ALREADY_HERE:
            return _outcome("already_present", request)
        if error.code == errors.CONVERSATION_CLOSED:
            raise _closed_at_twilio(rt, conversation) from error
        raise
    _record_added(rt, conversation, participant)
    return _outcome("added", request, participant_sid=participant.sid)


# -- pairs -----------------------------------------------------------------------------------


class _Conflict(Exception):
    """The add ends here with this answer (a business answer, not a failure)."""

    def __init__(self, answer: dict):
        super().__init__(answer.get("outcome"))
        self.answer = answer


class _PairAdd:
    """One job's add of a pair: a few rounds of look, decide, create."""

    def __init__(self, rt: Runtime, locks: Locks, request: AddRequest):
        self.rt = rt
        self.locks = locks
        self.request = request
        self.conversation = request.conversation_sid
        self.pair = request.pair_id
        self.service = _service(rt, self.conversation)
        self.creates = 0
        self.resolution: dict = {}
        self.met_holder = ""  # the holder a 50416 named in this job
        self.never_seen = False
        self.trusting = trusts_ledger(rt)

    def run(self) -> dict:
        try:
            for _ in range(MAX_ROUNDS):
                answer = self._round()
                if answer is not None:
                    return answer
        except _Conflict as conflict:
            return conflict.answer
        raise errors.Retryable(f"{self.request.describe()} kept changing while being added")

    def _round(self) -> dict | None:
        ledger = self.rt.ledger
        record = ledger.pair(self.pair)
        if record is not None and record.holder == self.conversation and not record.pending:
            if self.trusting:
                ledger.count("duplicate_attempts_avoided")
                return _outcome(
                    "already_present", self.request, participant_sid=record.participant_sid
                )
            here = self._still_here(record)
            if here is not None:
                ledger.count("duplicate_attempts_avoided")
                return _outcome("already_present", self.request, participant_sid=here.sid)
            # Removed behind Bindery's back (no webhook): the ledger lets go, and the add goes on.
            ledger.release(
                self.pair,
                self.conversation,
                self.rt.clock.now(),
                record.participant_sid,
                self.locks.fence(),
            )
            ledger.count("ledger_repaired")
            record = ledger.pair(self.pair)
        self.never_seen = record is None
        expected = record.pending if record is not None else ""
        unknown = record is None and not self.trusting  # trusted: a pair never seen is free
        must_ask = unknown or (record is not None and (bool(record.pending) or record.held))
        must_ask = must_ask or bool(self.met_holder)
        if must_ask:
            holding, changed = self._ask_twilio(expected, record.holder if record else "")
            if changed:
                return None  # marked by a pre-event while Twilio was asked: look again
            expected = ""
            if holding is not None and holding.conversation_sid == self.conversation:
                ledger.count("duplicate_attempts_avoided")
                return _outcome(
                    "already_present", self.request, participant_sid=holding.participant_sid
                )
            if holding is None and self.met_holder:
                raise _Conflict(self._believed(self.met_holder))
            if holding is not None:
                self._resolve(holding)  # raises _Conflict, or frees the pair
        return self._create(expected)

    def _still_here(self, record: PairRecord) -> Participant | None:
        """Twilio's word that the ledger's participant is still in this conversation."""
        for participant in self.rt.twilio.participants(self.conversation, self.service):
            if (participant.address, participant.proxy_address) == (
                self.request.address,
                self.request.proxy_address,
            ):
                return participant
        return None

    def _ask_twilio(self, expected_pending: str, ledger_holder: str) -> tuple[Holding | None, bool]:
        """Who holds the pair, in every service; remembered in the ledger. (holding, changed):
        `changed` when the pair was marked pending after it was read."""
        address, proxy = self.request.address, self.request.proxy_address
        # A holder Twilio named (50416) or the ledger knows, and a lookup missed: perhaps in a
        # service created since the list of services was cached. Look once more, afresh.
        # A pair never seen is looked for with the list of services asked afresh as well: the
        # one a new service's conversation holds would otherwise meet a 50416 first.
        contradicted = bool(self.met_holder or ledger_holder)
        holdings = self.rt.twilio.holdings(address, proxy, fresh=self.never_seen)
        if not holdings and contradicted and not self.never_seen:
            holdings = self.rt.twilio.holdings(address, proxy, fresh=True)
        now = self.rt.clock.now()
        ledger, fence = self.rt.ledger, self.locks.fence()
        if not holdings:
            result = ledger.mark_free(self.pair, now, fence, expected_pending, self.conversation)
            if ledger_holder and result == "ok":
                ledger.count("ledger_repaired")  # the ledger missed a close or a removal
            return None, result == "changed"
        holding = holdings[0]  # the rule allows one open holder
        ledger.record_conversation(
            holding.conversation_sid, holding.state, now, holding.service_sid
        )
        result = ledger.bind(
            self.pair,
            holding.conversation_sid,
            holding.participant_sid,
            now,
            fence,
            expected_pending=expected_pending,
        )
        if result == "changed":
            return None, True
        if ledger_holder and holding.conversation_sid != ledger_holder:
            ledger.count("ledger_repaired")
        return holding, False

    def _believed(self, holder: str) -> dict:
        """A 50416 named a holder that no lookup can see (a service Bindery cannot read, or a
        lookup that lags): Twilio's refusal is the truth."""
        self.rt.ledger.count("conflicts")
        return _outcome(
            "conflict",
            self.request,
            holder=holder,
            policy=self._policy,
            reason="Twilio refused the pair (50416) for a holder no lookup can see",
        )

    @property
    def _policy(self) -> str:
        return self.request.policy or self.rt.settings.conflict_policy

    def _resolve(self, holding: Holding) -> None:
        """Apply the conflict policy to the holder; raises `_Conflict` with the answer, or
        returns once the pair is free."""
        policy, holder = self._policy, holding.conversation_sid
        ledger = self.rt.ledger
        if policy == "reject":
            ledger.count("conflicts")
            raise _Conflict(
                _outcome(
                    "conflict",
                    self.request,
                    holder=holder,
                    policy=policy,
                    reason="the pair is held by another open conversation",
                )
            )
        if policy == "reuse":
            ledger.count("conflicts_resolved")
            raise _Conflict(
                _outcome(
                    "conflict_resolved",
                    self.request,
                    resolution="reuse",
                    holder=holder,
                    participant_sid=holding.participant_sid,
                )
            )
        # close-stale or move: act on the holder under its lock, on what Twilio says now.
        self.locks.acquire([keys.conversation_lock(holder)])
        if policy == "move":
            self._move_from(holding)
        else:
            self._close_if_stale(holding)
        self.resolution = {"resolution": policy, "holder": holder}
        log.info("conflict on %s resolved by %s of %s", self.request.describe(), policy, holder)

    def _move_from(self, holding: Holding) -> None:
        holder, service = holding.conversation_sid, holding.service_sid
        participants = self.rt.twilio.participants(holder, service)
        there = [
            p
            for p in participants
            if (p.address, p.proxy_address) == (self.request.address, self.request.proxy_address)
        ]
        if there:
            self.locks.refresh()
            try:
                self.rt.twilio.remove_participant(holder, there[0].sid, service)
            except errors.TwilioRefused as error:
                if error.code == errors.CONVERSATION_CLOSED:  # closed meanwhile: the pair is free
                    states.reread(self.rt, holder, service)
                    return
                if error.code not in errors.GONE:
                    raise
        self.rt.ledger.release(
            self.pair,
            holder,
            self.rt.clock.now(),
            there[0].sid if there else holding.participant_sid,
            self.locks.fence(),
        )

    def _close_if_stale(self, holding: Holding) -> None:
        holder, service = holding.conversation_sid, holding.service_sid
        ledger = self.rt.ledger
        current = states.reread(self.rt, holder, service)
        if current is None or current.state == states.CLOSED:
            return
        verdict = staleness.judge(
            self.rt.clock.now(),
            self.rt.settings.stale_after,
            twilio=current,
            last_message_at=self.rt.twilio.last_message_at(holder, service),
            ledger=ledger.conversation(holder),
        )
        if not verdict.stale:
            ledger.count("conflicts")
            raise _Conflict(
                _outcome(
                    "conflict",
                    self.request,
                    holder=holder,
                    policy="close-stale",
                    holder_state=current.state,
                    reason=f"the holder is {verdict.reason}",
                )
            )
        self.locks.refresh()
        states.close(self.rt, holder, service)

    def _create(self, expected_pending: str) -> dict | None:
        if self.creates >= MAX_CREATES:
            raise errors.Retryable(f"{self.request.describe()}: {MAX_CREATES} creates refused")
        ledger, rt = self.rt.ledger, self.rt
        self.locks.refresh()
        marked = ledger.mark_pending(
            self.pair, self.conversation, rt.clock.now(), self.locks.fence(), expected_pending
        )
        if marked == "changed":
            return None  # a pre-event let an add of the pair through meanwhile: look again
        self.creates += 1
        try:
            participant = rt.twilio.add_sms_participant(
                self.conversation, self.request.address, self.request.proxy_address, self.service
            )
        except errors.TwilioRefused as error:
            return self._refused(error)
        _record_added(rt, self.conversation, participant)
        ledger.bind(
            self.pair,
            self.conversation,
            participant.sid,
            _when(rt, participant),
            self.locks.fence(),
        )
        if self.resolution:
            ledger.count("conflicts_resolved")
            return _outcome(
                "conflict_resolved",
                self.request,
                participant_sid=participant.sid,
                **self.resolution,
            )
        return _outcome("added", self.request, participant_sid=participant.sid)

    def _refused(self, error: errors.TwilioRefused) -> dict | None:
        ledger, rt = self.rt.ledger, self.rt
        if error.code == errors.PAIR_ALREADY_HERE:
            ledger.bind(self.pair, self.conversation, "", rt.clock.now(), self.locks.fence())
            ledger.count("already_present_at_twilio")
            return _outcome("already_present", self.request)
        holder = holder_from_message(error.message)
        if error.code == errors.PAIR_HELD_ELSEWHERE and holder:
            ledger.count("reconciled_50416")
            log.warning("50416 reconciled: %s is held by %s", self.request.describe(), holder)
            ledger.record_conversation(holder, states.ACTIVE, rt.clock.now())
            ledger.bind(
                self.pair,
                holder,
                "",
                rt.clock.now(),
                self.locks.fence(),
                expected_pending=self.conversation,
            )
            if self.met_holder:
                raise _Conflict(self._believed(holder))
            self.met_holder = holder
            return None  # look once more: a holder a lookup can see gets the policy
        ledger.clear_pending(self.pair, self.conversation)
        if error.code == errors.CONVERSATION_CLOSED:
            raise _closed_at_twilio(rt, self.conversation) from error
        raise error
