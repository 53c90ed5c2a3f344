"""Repairing the ledger from Twilio's own state, so lost webhooks cannot leave it wrong for long.

Which conversations to look at: every open one Twilio lists, in every Conversation Service of the
account, and every one the ledger has a record (or pairs) of; up to
`BINDERY_RECONCILE_CONCURRENCY` at once. How: each is looked at on its own,
under its lock, on what Twilio says at that moment (the conversation fetched again, its
participants listed after the lock is taken): a list taken minutes earlier is never the reason for
a repair, so a conversation created, reactivated or closed during the run is judged on its current
state. Differences are reported and, unless `dry_run`, repaired; pairs are repaired under their own
lock too. Closed is final here as everywhere: a conversation the ledger knows closed is never
re-opened (if Twilio says otherwise, it is reported, not repaired).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from workers import errors, keys
from workers.addresses import mask
from workers.states import CLOSED, HOLDING_STATES, REMOVED, find

if TYPE_CHECKING:
    from workers.locks import Locks
    from workers.runtime import Runtime


@dataclass(frozen=True)
class Difference:
    conversation_sid: str
    kind: str
    """state | closed | removed | pair_missing | pair_extra | identity_missing | identity_extra |
    closed_in_ledger (reported only) | busy (its lock was held: looked at next run)"""
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _masked_pair(pair_id: str) -> str:
    address, proxy = keys.split_pair_id(pair_id)
    return f"{mask(address)}|{mask(proxy)}"


def run(
    rt: Runtime, dry_run: bool = False, seen: Callable[[], None] | None = None
) -> list[Difference]:
    listed: dict[str, str] = {}  # conversation SID -> its service
    for service in rt.twilio.services():
        for state in HOLDING_STATES:
            for conversation in rt.twilio.conversations(state, service):
                listed[conversation.sid] = conversation.service_sid or service
    todo = list(listed.items())
    for sid in rt.ledger.conversation_sids():
        if sid in listed:
            continue
        record = rt.ledger.conversation(sid)
        if record.final and not rt.ledger.pairs_of(sid):
            continue
        todo.append((sid, record.service_sid))

    def one(item: tuple[str, str]) -> list[Difference]:
        found = reconcile_conversation(rt, item[0], item[1], dry_run)
        if seen:
            seen()
        return found

    # Each conversation is judged on its own, under its own lock: they may be judged at once.
    workers = min(rt.settings.reconcile_concurrency, max(1, len(todo)))
    if workers == 1:
        results = [one(item) for item in todo]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="reconcile") as pool:
            results = list(pool.map(one, todo))
    differences = [d for found in results for d in found]
    for difference in differences:
        rt.ledger.count(f"reconcile_{difference.kind}")
    if not dry_run:
        rt.ledger.note_reconciled(rt.clock.now())
    return differences


def run_scheduled(rt: Runtime) -> dict:
    """The clock's reconciliation."""
    differences = run(rt)
    return {"outcome": "reconciled", "differences": len(differences)}


def reconcile_conversation(
    rt: Runtime, sid: str, service_sid: str = "", dry_run: bool = False
) -> list[Difference]:
    """One conversation, under its lock, against what Twilio says now."""
    with rt.locks() as locks:
        try:
            locks.acquire([keys.conversation_lock(sid)])
        except errors.LockBusy:
            return [Difference(sid, "busy", "a job holds it; looked at again next run")]
        record = rt.ledger.conversation(sid)
        service_sid = service_sid or record.service_sid
        current = find(rt.twilio, sid, service_sid)
        if current is None or current.state == CLOSED:
            return _gone(rt, record, current is None, dry_run)
        if record.final:
            return [
                Difference(
                    sid,
                    "closed_in_ledger",
                    f"ledger says {record.state}, Twilio {current.state}: left as it is",
                )
            ]
        found: list[Difference] = []
        if record.state != current.state:
            found.append(
                Difference(
                    sid, "state", f"ledger {record.state or 'unknown'}, Twilio {current.state}"
                )
            )
            if not dry_run:
                rt.ledger.record_conversation(
                    sid, current.state, current.date_created, current.service_sid
                )
                rt.ledger.set_state(sid, current.state, current.date_updated, authoritative=True)
        participants = rt.twilio.participants(sid, service_sid)
        found += _pairs(rt, locks, sid, service_sid, participants, dry_run)
        found += _members(rt, locks, sid, participants, dry_run)
        return found


def _gone(rt: Runtime, record, deleted: bool, dry_run: bool) -> list[Difference]:
    if record.final and not rt.ledger.pairs_of(record.sid):
        return []
    kind, state = ("removed", REMOVED) if deleted else ("closed", CLOSED)
    said = "does not exist" if deleted else "is closed"
    difference = Difference(record.sid, kind, f"ledger says {record.state}; Twilio: {said}")
    if not dry_run:
        rt.ledger.set_state(record.sid, state, rt.clock.now(), authoritative=True)
    return [difference]


def _pair_ids(participants) -> dict:
    return {
        keys.pair_id(p.address, p.proxy_address): p
        for p in participants
        if p.address and p.proxy_address
    }


def _pairs(
    rt: Runtime, locks: Locks, sid: str, service_sid: str, participants, dry_run: bool
) -> list[Difference]:
    in_twilio = _pair_ids(participants)
    in_ledger = rt.ledger.pairs_of(sid)
    found = []
    for pair_id, participant in in_twilio.items():
        record = rt.ledger.pair(pair_id)
        if record is not None and record.holder == sid and pair_id in in_ledger:
            continue  # (a holder the conversation does not list is bound again: its close must find it)
        found.append(Difference(sid, "pair_missing", _masked_pair(pair_id)))
        if not dry_run and _lock_pair(locks, pair_id):
            rt.ledger.bind(pair_id, sid, participant.sid, rt.clock.now(), locks.fence())
    extra = sorted(in_ledger - set(in_twilio))
    if dry_run or not extra:
        return found + [Difference(sid, "pair_extra", _masked_pair(p)) for p in extra]
    # A job holding a pair's lock (not the conversation's) may have learned since the list was
    # read that this conversation holds it: under the pair's lock, Twilio is asked again, and
    # only a pair still missing there is let go of (as the participant the ledger knew).
    locked = [pair_id for pair_id in extra if _lock_pair(locks, pair_id)]
    read_at = rt.clock.now()
    still_there = set(_pair_ids(rt.twilio.participants(sid, service_sid))) if locked else set()
    for pair_id in extra:
        if pair_id in still_there:
            continue
        found.append(Difference(sid, "pair_extra", _masked_pair(pair_id)))
        if pair_id in locked:
            record = rt.ledger.pair(pair_id)
            known = record.participant_sid if record is not None else ""
            rt.ledger.release(pair_id, sid, read_at, known, fence=locks.fence())
    return found


def _lock_pair(locks: Locks, pair_id: str) -> bool:
    # A job working on the pair holds it: the next run looks again.
    return locks.try_acquire(keys.pair_lock(pair_id))


def _members(rt: Runtime, locks: Locks, sid: str, participants, dry_run: bool) -> list[Difference]:
    in_twilio = {p.identity: p for p in participants if p.identity}
    known = rt.ledger.members_of(sid)
    believed = {identity for identity, member in known.items() if member.present}
    found = []
    for identity, participant in in_twilio.items():
        if identity in believed:
            continue
        found.append(Difference(sid, "identity_missing", identity))
        if not dry_run:
            rt.ledger.member_added(sid, identity, participant.sid, rt.clock.now(), locks.fence())
    for identity in believed - set(in_twilio):
        found.append(Difference(sid, "identity_extra", identity))
        if not dry_run:
            rt.ledger.member_removed(
                sid, identity, known[identity].participant_sid, rt.clock.now(), locks.fence()
            )
    return found
