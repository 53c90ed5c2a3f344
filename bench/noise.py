"""Rounds measured while other users left the machine alone.

The machine is shared: another user's test run can take most of both cores for seconds, and a
latency measured then says nothing about Bindery. Each round reports the cores other users took
meanwhile (`harness.CpuMeter`); a round over `LIMIT` is run again, up to `retries` times, and every
noisy round is counted in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LIMIT = 0.5
"""Cores other users may take during a round before it is run again."""


@dataclass
class Rounds:
    kept: list[Any] = field(default_factory=list)
    noisy: list[float] = field(default_factory=list)
    """The other users' cores during each noisy round."""
    forced: int = 0
    """Noisy rounds kept anyway because too few quiet ones came."""

    def note(self, what: str) -> str:
        if not self.noisy:
            return f"{what}: all {len(self.kept)} rounds quiet (other users under {LIMIT} cores)"
        cores = ", ".join(f"{x:.2f}" for x in self.noisy)
        return (
            f"{what}: {len(self.kept)} rounds kept; {len(self.noisy)} noisy ones (other users "
            f"took {cores} cores) run again, {self.forced} of them kept for lack of quiet ones"
        )

    def to_dict(self) -> dict:
        return {"noisy_cores": self.noisy, "forced": self.forced}


def quiet_rounds(run_round: Callable[[], tuple[Any, float]], rounds: int, retries: int) -> Rounds:
    """Call `run_round` (which answers its result and the other users' cores) until `rounds` of
    them were quiet, or `rounds + retries` attempts were made; the least noisy fill any gap."""
    result = Rounds()
    noisy: list[tuple[float, Any]] = []
    for _ in range(rounds + retries):
        value, others = run_round()
        if others <= LIMIT:
            result.kept.append(value)
            if len(result.kept) == rounds:
                break
        else:
            noisy.append((others, value))
    result.noisy = [others for others, _ in noisy]
    noisy.sort(key=lambda pair: pair[0])
    while len(result.kept) < rounds and noisy:
        result.kept.append(noisy.pop(0)[1])
        result.forced += 1
    return result
