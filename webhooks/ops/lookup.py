"""Lookup: a conversation as the ledger has it (state, pairs, identities, last activity) and, on
demand, as Twilio has it now, with the differences marked; and a pair (who holds it).

A pair is looked up by its full numbers, so that form is a POST: the numbers stay out of URLs,
browser history and access logs, and the answer shows them masked.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, request, url_for

from webhooks.ops.blueprint import blueprint, runtime
from workers import keys
from workers.addresses import is_sid, mask_text, pair_problem
from workers.errors import TwilioError


@dataclass(frozen=True)
class Member:
    """A pair or identity of the conversation, and where it is known."""

    kind: str  # pair | identity
    name: str  # pair id (shown masked) or identity
    in_ledger: bool
    in_twilio: bool | None  # None: Twilio was not asked
    participant_sid: str = ""
    holder: str = ""  # the pair's holder per the ledger, when it is not this conversation
    pending: bool = False

    @property
    def differs(self) -> bool:
        return self.in_twilio is not None and self.in_ledger != self.in_twilio


def members(rt, sid: str, participants) -> list[Member]:
    """Every pair and identity the ledger or Twilio (`participants`, or None) has for `sid`."""
    ledger = rt.ledger
    pairs = ledger.pairs_of(sid)
    known = ledger.members_of(sid)
    identities = {identity for identity, member in known.items() if member.present}
    asked = participants is not None
    twilio_pairs = {
        keys.pair_id(p.address, p.proxy_address): p for p in participants or [] if p.address
    }
    twilio_identities = {p.identity: p for p in participants or [] if p.identity}
    found = []
    for pair_id in sorted(pairs | set(twilio_pairs)):
        record = ledger.pair(pair_id)
        holder = record.holder if record and record.holder != sid else ""
        participant = twilio_pairs.get(pair_id)
        found.append(
            Member(
                "pair",
                pair_id,
                pair_id in pairs,
                (participant is not None) if asked else None,
                participant.sid if participant else (record.participant_sid if record else ""),
                holder,
                bool(record and record.pending == sid),
            )
        )
    pending = {identity for identity, member in known.items() if member.pending}
    for identity in sorted(identities | pending | set(twilio_identities)):
        participant = twilio_identities.get(identity)
        found.append(
            Member(
                "identity",
                identity,
                identity in identities,
                (participant is not None) if asked else None,
                participant.sid
                if participant
                else known[identity].participant_sid
                if identity in known
                else "",
                pending=identity in known and known[identity].pending,
            )
        )
    return found


@blueprint.get("/lookup")
def lookup():
    sid = (request.args.get("conversation") or "").strip()
    if sid:
        if is_sid(sid, "CH"):
            return redirect(url_for("ops.conversation_page", sid=sid), 303)
        flash("A conversation SID is CH followed by 32 hex digits.", "error")
    return render_template("ops/lookup.html")


@blueprint.get("/conversations/<sid>")
def conversation_page(sid: str):
    if not is_sid(sid, "CH"):
        flash("A conversation SID is CH followed by 32 hex digits.", "error")
        return redirect(url_for("ops.lookup"), 303)
    rt = runtime()
    record = rt.ledger.conversation(sid)
    twilio, participants, twilio_error = None, None, ""
    if request.args.get("twilio"):
        try:
            twilio = rt.twilio.fetch_conversation(sid)
            participants = rt.twilio.participants(sid)
        except TwilioError as error:
            twilio_error = mask_text(str(error))
    found = members(rt, sid, participants)
    state_differs = twilio is not None and twilio.state != (record.state or "")
    return render_template(
        "ops/conversation.html",
        sid=sid,
        record=record,
        members=found,
        twilio=twilio,
        twilio_error=twilio_error,
        state_differs=state_differs,
        differences=sum(m.differs for m in found) + int(state_differs),
    )


@blueprint.post("/pairs")
def pair_page():
    address = (request.form.get("address") or "").strip()
    proxy = (request.form.get("proxy_address") or "").strip()
    problem = pair_problem(address, proxy)
    if problem:
        field, what = problem
        message = f"The {'customer' if field == 'address' else 'proxy'} address {what}."
        return render_template("ops/lookup.html", pair_error=message), 400
    pair_id = keys.pair_id(address, proxy)
    record = runtime().ledger.pair(pair_id)
    holder = runtime().ledger.conversation(record.holder) if record and record.holder else None
    return render_template("ops/pair.html", pair_id=pair_id, record=record, holder=holder)
