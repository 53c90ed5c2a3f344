"""Is this conversation stale? The one place that decides, from Twilio's facts and the ledger's.

A conversation is stale when nothing has happened in it for longer than a limit, whatever its state
(inactive only means Twilio's own timer fired; an inactive conversation a customer wrote to ten
minutes ago is not stale). What counts as "something happened" is the latest of every sign there
is: Twilio's `date_updated` and `date_created`, the newest message Twilio has, and the last activity
the ledger saw (messages and adds, from post-events). Missing facts count as no sign, so a judgment
made on the ledger alone (the pre-event's guess) is only ever a guess; an automatic close re-reads
Twilio's facts under the conversation's lock and judges again.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.gateway import Conversation
from workers.ledger import ConversationRecord


@dataclass(frozen=True)
class Staleness:
    last_activity: float
    idle_seconds: float
    limit: float
    stale: bool

    @property
    def reason(self) -> str:
        verdict = "stale" if self.stale else "busy"
        return f"{verdict}: idle {_duration(self.idle_seconds)} (limit {_duration(self.limit)})"


def judge(
    now: float,
    limit: float,
    *,
    twilio: Conversation | None = None,
    last_message_at: float = 0.0,
    ledger: ConversationRecord | None = None,
) -> Staleness:
    """Idle for `limit` seconds or more at `now` (Twilio's clock)?"""
    signs = [last_message_at]
    if twilio is not None:
        signs += [twilio.date_updated, twilio.date_created]
    if ledger is not None:
        signs += [ledger.last_activity, ledger.created_at]
    last = max(signs)
    idle = max(0.0, now - last) if last else float("inf")
    return Staleness(last, idle, limit, idle >= limit)


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "forever"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"
