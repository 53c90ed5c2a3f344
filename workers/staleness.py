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
        return f"{verdict}: idle {format_duration(self.idle_seconds)} (limit {format_duration(self.limit)})"


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


_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(seconds: float) -> str:
    """How every duration is written for people: the two largest units, the smaller one rounded
    (`60` -> `1m`, `90` -> `1m 30s`, `5400` -> `1h 30m`, `21600` -> `6h`, `129600` -> `1d 12h`)."""
    if seconds == float("inf"):
        return "forever"
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{seconds:.1f}s"
    total = round(seconds)
    for index, (name, size) in enumerate(_UNITS[:-1]):
        if total >= size:
            smaller, smaller_size = _UNITS[index + 1]
            first, rest = divmod(total, size)
            second = round(rest / smaller_size)
            if second * smaller_size >= size:  # 23h 59m 59s rounds up to 1d, not to 24h
                return format_duration((first + 1) * size)
            return f"{first}{name}" + (f" {second}{smaller}" if second else "")
    return f"{total}s"
