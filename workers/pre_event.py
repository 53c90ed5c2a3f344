"""What Bindery answers Twilio's pre-events, decided from the ledger within Twilio's 5 s budget.

`onParticipantAdd`: a pair another open conversation holds (as the ledger knows it) is refused
(409: Twilio would answer 50416), and, when the conflict policy can resolve it (`move`, or
`close-stale` for a holder that looks idle), a participant-add job is enqueued that deals with the
holder on Twilio's facts and adds the pair; a participant already here is refused as
`already_present`, and one a Bindery job is creating right now (its pending mark younger than a
job's timeout) as `being_added` (or `pair_being_added`, elsewhere): the job's create would meet the
SDK's. Anything else is let through, and an allowed pair (or identity) is marked for that conversation
(one write), so an add racing the SDK add's post-event asks Twilio first.

`onConversationAdd` with a binding (an inbound message about to autocreate a conversation): to a
pool number, an out-of-session message, refused (409) as `BINDERY_OUT_OF_SESSION` says
(`workers/out_of_session.py`); otherwise the pair is marked pending the same way.

A pre-event fails open: whatever goes wrong here (Redis down, a shape Bindery does not know),
Twilio still enforces its own rule, so the web side answers 200 (counted and logged) rather than
making Twilio reject the add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workers import job_catalog, keys, out_of_session, staleness
from workers.participants import AUTOCREATION

if TYPE_CHECKING:
    from webhooks.payloads import ConversationAdd, ParticipantAdd
    from workers.runtime import Runtime

LET_THROUGH = 200
REFUSED = 409


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict = field(default_factory=dict)


def participant_add(rt: Runtime, event: ParticipantAdd) -> Answer:
    ledger, conversation, now = rt.ledger, event.conversation_sid, rt.clock.now()
    in_flight = rt.settings.job_timeout  # a job's create is answered within its run
    if not (event.address and event.proxy_address):
        member = ledger.member(conversation, event.identity) if event.identity else None
        if member is not None and member.present:
            return Answer(REFUSED, {"reason": "already_present", "identity": event.identity})
        if member is not None and member.pending and now - member.at < in_flight:
            return Answer(REFUSED, {"reason": "being_added", "identity": event.identity})
        if event.identity:
            ledger.member_expected_from_pre_event(conversation, event.identity, now)
        return Answer(LET_THROUGH)
    pair_id = keys.pair_id(event.address, event.proxy_address)
    pair = ledger.pair(pair_id)
    if pair is None or not pair.held:
        target = pair.being_added(now, in_flight) if pair is not None else ""
        if target == conversation:
            return Answer(REFUSED, {"reason": "being_added"})
        if target:
            return Answer(REFUSED, {"reason": "pair_being_added", "holder": target})
        ledger.mark_pending_for_pre_event(pair_id, conversation, now)
        return Answer(LET_THROUGH)
    if pair.holder == conversation:
        return Answer(REFUSED, {"reason": "already_present"})

    body = {"reason": "pair_in_use", "holder": pair.holder}
    policy = rt.settings.conflict_policy
    # For close-stale, a guess on the ledger alone: the job decides on Twilio's facts, under the
    # holder's lock.
    resolvable = policy == "move" or (
        policy == "close-stale"
        and staleness.judge(
            rt.clock.now(), rt.settings.stale_after, ledger=ledger.conversation(pair.holder)
        ).stale
    )
    if resolvable:
        job, _ = rt.queue.enqueue(
            job_catalog.PARTICIPANT_ADD,
            {
                "conversation_sid": conversation,
                "address": event.address,
                "proxy_address": event.proxy_address,
                "policy": policy,
            },
            kind="participant-add",
            job_id=job_catalog.pre_event_add_job_id(
                conversation, event.address, event.proxy_address, pair.holder
            ),
        )
        body.update(resolution=policy, job_id=job.id)
    return Answer(REFUSED, body)


def conversation_add(rt: Runtime, event: ConversationAdd) -> Answer:
    if event.address and event.proxy_address:
        refused = out_of_session.decide(rt, event.address, event.proxy_address, event.message_body)
        if refused is not None:
            return Answer(REFUSED, refused.answer_body())
        pair_id = keys.pair_id(event.address, event.proxy_address)
        rt.ledger.mark_pending_for_pre_event(pair_id, AUTOCREATION, rt.clock.now())
    return Answer(LET_THROUGH)
