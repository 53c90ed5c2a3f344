"""Forgetting what is over: the ledger keeps a conversation's record for `BINDERY_PRUNE_AFTER` after
it closed, and a pair's after it was let go, then the clock's hourly prune deletes them, so Redis
does not grow with history. Each record is deleted only if it is still over (a pair bound again,
a conversation the ledger no longer calls closed, is kept); one pruned too early would only make
the next add of its pair ask Twilio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.runtime import Runtime

INTERVAL = 3600.0
"""Seconds between the clock's prunes (when BINDERY_PRUNE_AFTER is not 0)."""


def run_scheduled(rt: Runtime) -> dict:
    """The clock's prune."""
    if rt.settings.prune_after <= 0:
        return {"outcome": "off"}
    pruned = rt.ledger.prune(rt.clock.now() - rt.settings.prune_after)
    return {"outcome": "pruned", "records": pruned}
