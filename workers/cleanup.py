"""Closing stale conversations: the root cause of most 50416s is a conversation nobody closed.

The scan pages through the service's active and inactive conversations (reads are not write-limited)
and finds those idle longer than `stale_after`: idle since the later of Twilio's `date_updated` and
the last activity the ledger saw (messages, adds). Each stale one gets a state-change job, so the
close goes through the same per-conversation lock and ordering as every other change, spaced
`1/rate` seconds apart to stay below Twilio's write limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from workers.dispatch import stable_id
from workers.runtime import Runtime

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
    """Every open conversation idle for longer than `stale_after` seconds, on Twilio's clock."""
    for state in ("active", "inactive"):
        for conversation in rt.gateway.conversations(state):
            if seen:
                seen()
            now = rt.gateway.now()
            ledger = rt.ledger.conversation(conversation.sid)
            last = max(conversation.date_updated, conversation.date_created, ledger.last_activity)
            idle = now - last
            if idle > stale_after:
                reason = f"{state}, idle {idle / 3600:.1f}h (limit {stale_after / 3600:.1f}h)"
                yield Stale(conversation.sid, state, last, idle, reason)


def run(
    rt: Runtime,
    stale_after: float | None = None,
    dry_run: bool = False,
    rate: float = DEFAULT_RATE,
    seen: Callable[[], None] | None = None,
) -> list[Stale]:
    """Find stale conversations and (unless `dry_run`) schedule a close for each; the report lists
    them either way."""
    stale_after = rt.settings.stale_after if stale_after is None else stale_after
    report = []
    for index, stale in enumerate(find_stale(rt, stale_after, seen)):
        if not dry_run:
            job, _ = rt.dispatcher.enqueue(
                "workers.jobs.state_change",
                {
                    "conversation_sid": stale.conversation_sid,
                    "state": "closed",
                    "at": rt.gateway.now(),
                    "reason": "cleanup",
                },
                kind="state-change",
                job_id=stable_id("cleanup-close", stale.conversation_sid),
                delay=index / rate if rate > 0 else 0,
            )
            stale = Stale(**{**stale.to_dict(), "job_id": job.id})
        report.append(stale)
    return report
