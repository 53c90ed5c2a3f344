"""Rebuilding the ledger from Twilio's own state, so lost webhooks cannot leave it wrong for long.

For every open conversation in Twilio: its state, its SMS/WhatsApp pairs and its chat identities are
compared with the ledger; for every conversation the ledger thinks open but Twilio does not list as
open, the ledger learns it is closed (releasing its pairs). Each difference is reported and, unless
`dry_run`, repaired under the conversation's lock (and the pair's), so repairs never interleave with
a job's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from workers import keys
from workers.addresses import mask
from workers.gateway import Conversation
from workers.runtime import Runtime


@dataclass(frozen=True)
class Difference:
    conversation_sid: str
    kind: str  # state | pair_missing | pair_extra | identity_missing | identity_extra | closed
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _masked_pair(pair_id: str) -> str:
    address, _, proxy = pair_id.partition("|")
    return f"{mask(address)}|{mask(proxy)}"


def run(
    rt: Runtime, dry_run: bool = False, seen: Callable[[], None] | None = None
) -> list[Difference]:
    differences: list[Difference] = []
    open_in_twilio: dict[str, Conversation] = {}
    for state in ("active", "inactive"):
        for conversation in rt.gateway.conversations(state):
            open_in_twilio[conversation.sid] = conversation
    for conversation in open_in_twilio.values():
        differences += _reconcile_open(rt, conversation, dry_run)
        if seen:
            seen()
    for sid in rt.ledger.conversation_sids():
        if sid in open_in_twilio:
            continue
        record = rt.ledger.conversation(sid)
        if record.final:
            continue
        differences.append(
            Difference(
                sid,
                "closed",
                f"ledger says {record.state}; Twilio lists it as neither active nor inactive",
            )
        )
        if not dry_run:
            with rt.locks() as locks:
                locks.acquire([keys.conversation_lock(sid)])
                rt.ledger.overwrite_state(sid, "closed", rt.gateway.now())
        if seen:
            seen()
    for difference in differences:
        rt.ledger.count(f"reconcile_{difference.kind}")
    return differences


def _reconcile_open(rt: Runtime, conversation: Conversation, dry_run: bool) -> list[Difference]:
    sid = conversation.sid
    found: list[Difference] = []
    participants = rt.gateway.participants(sid)
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(sid)])
        ledger = rt.ledger
        now = rt.gateway.now()
        record = ledger.conversation(sid)
        if record.state != conversation.state:
            found.append(
                Difference(
                    sid, "state", f"ledger {record.state or 'unknown'}, Twilio {conversation.state}"
                )
            )
            if not dry_run:
                ledger.overwrite_state(sid, conversation.state, now)

        in_twilio = {keys.pair_id(p.address, p.proxy_address): p for p in participants if p.address}
        in_ledger = ledger.pairs_of(sid)
        for pair_id, participant in in_twilio.items():
            holder = ledger.pair(pair_id)
            if holder is None or holder.holder != sid:
                found.append(Difference(sid, "pair_missing", _masked_pair(pair_id)))
                if not dry_run:
                    locks.acquire([keys.pair_lock(pair_id)])
                    ledger.bind(
                        pair_id, sid, participant.sid, max(now, holder.bound_at if holder else 0)
                    )
        for pair_id in in_ledger - set(in_twilio):
            found.append(Difference(sid, "pair_extra", _masked_pair(pair_id)))
            if not dry_run:
                locks.acquire([keys.pair_lock(pair_id)])
                ledger.release(pair_id, sid, now)

        identities = {p.identity for p in participants if p.identity}
        known = ledger.identities_of(sid)
        for identity in identities - known:
            found.append(Difference(sid, "identity_missing", identity))
            if not dry_run:
                ledger.add_identity(sid, identity)
        for identity in known - identities:
            found.append(Difference(sid, "identity_extra", identity))
            if not dry_run:
                ledger.remove_identity(sid, identity)
    return found
