"""Rate and concurrency limits and injected faults of the /v1 REST API and of the webhooks.

Twilio limits writes per conversation (participant and message create/update/delete, conversation
update) and the account's concurrent requests; both answer 429 with code 20429. Both are off
unless configured. Faults add random 429/500 answers and latency for resilience tests, and can
leave `I-Twilio-Idempotency-Token` off the webhooks (whether Conversations sends it is
unconfirmed), so a receiver's other de-duplication is exercised.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from emulator.errors import InternalServerError, TooManyRequests


@dataclass(frozen=True)
class Faults:
    """The current limits and faults; `None` turns a limit off."""

    error_rate_429: float = 0.0
    error_rate_500: float = 0.0
    latency_ms: int = 0
    max_concurrency: int | None = None
    writes_per_second_per_conversation: int | None = None
    writes_only: bool = False
    """When true the error rates hit writes (POST, DELETE) only, so reads keep working."""
    omit_idempotency_token: bool = False
    """When true webhooks carry no `I-Twilio-Idempotency-Token` header."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, data: dict[str, Any], baseline: Faults) -> Faults:
        """Faults from `POST /_emulator/faults`: a missing field takes its baseline value."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name in ("error_rate_429", "error_rate_500"):
            if name in data:
                rate = data[name]
                if (
                    not isinstance(rate, int | float)
                    or isinstance(rate, bool)
                    or not 0 <= rate <= 1
                ):
                    raise ValueError(f"{name} must be a number from 0 to 1")
                values[name] = float(rate)
        if "latency_ms" in data:
            values["latency_ms"] = _whole(
                data["latency_ms"], "latency_ms", minimum=0, nullable=False
            )
        for name in ("max_concurrency", "writes_per_second_per_conversation"):
            if name in data:
                values[name] = _whole(data[name], name, minimum=1, nullable=True)
        for name in ("writes_only", "omit_idempotency_token"):
            if name in data:
                if not isinstance(data[name], bool):
                    raise ValueError(f"{name} must be true or false")
                values[name] = data[name]
        return replace(baseline, **values)


def _whole(value: Any, name: str, *, minimum: int, nullable: bool) -> Any:
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"{name} must be a whole number >= {minimum}" + (" or null" if nullable else "")
        )
    return value


class Limits:
    """Applies the current Faults; thread-safe."""

    def __init__(self, baseline: Faults) -> None:
        self._lock = threading.Lock()
        self.baseline = baseline
        self._faults = baseline
        self._in_flight = 0
        self._writes: dict[str, deque[float]] = {}
        self._random = random.Random()

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def configure(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._writes.clear()

    def reset(self) -> None:
        self.configure(self.baseline)

    def enter(self) -> None:
        """Count one in-flight request; 20429 when the account's concurrency is used up."""
        with self._lock:
            limit = self._faults.max_concurrency
            if limit is not None and self._in_flight >= limit:
                raise TooManyRequests("Too many concurrent requests")
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def inject(self, is_write: bool) -> float:
        """Raise an injected 429 or 500, or answer the latency (seconds) to serve."""
        faults = self.faults
        if is_write or not faults.writes_only:
            roll = self._random.random()
            if roll < faults.error_rate_429:
                raise TooManyRequests("Too Many Requests (injected)")
            if roll < faults.error_rate_429 + faults.error_rate_500:
                raise InternalServerError("Internal Server Error (injected)")
        return faults.latency_ms / 1000.0

    def write(self, conversation_sid: str) -> None:
        """Count a write to the conversation; 20429 past the per-second limit (sliding window)."""
        with self._lock:
            limit = self._faults.writes_per_second_per_conversation
            if limit is None:
                return
            now = time.monotonic()
            window = self._writes.setdefault(conversation_sid, deque())
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                raise TooManyRequests(
                    f"Too many writes to conversation {conversation_sid}: limit {limit} per second"
                )
            window.append(now)
