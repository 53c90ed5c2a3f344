"""Closing stale conversations: the root cause of most 50416s is a conversation nobody closed.

The scan pages through the service's active and inactive conversations (reads are not
write-limited) and picks those that look idle longer than the limit from what the list shows
(Twilio's `date_updated`) and what the ledger saw. Each gets a `close_if_stale` job, spaced `1/rate`
seconds apart to stay below Twilio's write limits. A scan's pick is only a candidate: the close
job, minutes later, re-reads Twilio's facts under the conversation's lock (its state, its
`date_updated`, its newest message) and closes only if it is still stale then (`kept` otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from workers import job_catalog, keys, staleness
from workers.states import CLOSED, HOLDING_STATES, REMOVED, close, reread

if TYPE_CHECKING:
    from workers.runtime import Runtime

PAGE = 100
"""Conversations judged at a time: the ledger's records of a page are read in one round trip."""
DEFAULT_RATE = 10.0
"""Closes per second the cleanup schedules at most (Twilio allows 30 writes/s per service)."""


@dataclass(frozen=True)
class Stale:
    conversation_sid: str
    state: str
    last_activity: float
    idle_seconds: float
    reason: str
    job_id: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def find_stale(
    rt: Runtime, stale_after: float, seen: Callable[[], None] | None = None
) -> Iterator[Stale]:
    """Every open conversation of the service that looks idle longer than `stale_after` seconds,
    on Twilio's clock."""
    for state in HOLDING_STATES:
        listed = rt.twilio.conversations(state)
        while page := list(itertools.islice(listed, PAGE)):
            records = rt.ledger.conversations([c.sid for c in page])  # one round trip a page
            for conversation, record in zip(page, records, strict=True):
                if seen:
                    seen()
                verdict = staleness.judge(
                    rt.clock.now(), stale_after, twilio=conversation, ledger=record
                )
                if not verdict.stale:
                    continue
                yield Stale(
                    conversation.sid,
                    state,
                    verdict.last_activity,
                    verdict.idle_seconds,
                    f"{state}, {verdict.reason}",
                )


def run(
    rt: Runtime,
    stale_after: float | None = None,
    dry_run: bool = False,
    rate: float = DEFAULT_RATE,
    seen: Callable[[], None] | None = None,
) -> list[Stale]:
    """Find stale conversations and (unless `dry_run`) schedule a re-checked close for each; the
    report lists them either way."""
    stale_after = rt.settings.stale_after if stale_after is None else stale_after
    scan = rt.clock.now()
    report = []
    for index, stale in enumerate(find_stale(rt, stale_after, seen)):
        if not dry_run:
            job, _ = rt.queue.enqueue(
                job_catalog.CLOSE_IF_STALE,
                {"conversation_sid": stale.conversation_sid, "stale_after": stale_after},
                kind="close-stale",
                job_id=job_catalog.cleanup_close_job_id(stale.conversation_sid, scan),
                delay=index / rate if rate > 0 else 0,
            )
            stale = Stale(**{**stale.to_dict(), "job_id": job.id})
        report.append(stale)
    return report


def close_if_stale(rt: Runtime, conversation_sid: str, stale_after: float) -> dict:
    """Close the conversation if Twilio's facts, read now under its lock, say it is stale."""
    answer = {"conversation_sid": conversation_sid}
    with rt.locks() as locks:
        locks.acquire([keys.conversation_lock(conversation_sid)])
        record = rt.ledger.conversation(conversation_sid)
        if record.final:
            return {**answer, "outcome": "unchanged", "current": record.state}
        current = reread(rt, conversation_sid, record.service_sid)
        if current is None or current.state == CLOSED:
            return {
                **answer,
                "outcome": "unchanged",
                "current": current.state if current else REMOVED,
            }
        verdict = staleness.judge(
            rt.clock.now(),
            stale_after,
            twilio=current,
            last_message_at=rt.twilio.last_message_at(conversation_sid, record.service_sid),
            ledger=record,
        )
        if not verdict.stale:
            return {**answer, "outcome": "kept", "current": current.state, "reason": verdict.reason}
        locks.refresh()
        close(rt, conversation_sid, record.service_sid)
        return {**answer, "outcome": "changed", "current": CLOSED, "reason": verdict.reason}


def run_scheduled(rt: Runtime) -> dict:
    """The clock's cleanup: schedule a re-checked close for each stale conversation."""
    report = run(rt)
    return {
        "outcome": "scheduled",
        "closes": len(report),
        "conversations": [s.conversation_sid for s in report],
    }
