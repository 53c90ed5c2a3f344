"""The emulator's clock: wall time plus an offset that `POST /_emulator/clock` moves forward.

Every date the emulator writes and every timer it fires reads this clock, so advancing it ages
conversations without waiting.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from emulator.errors import InvalidParameter

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.ASCII,
)


class TimeSource(Protocol):
    """What the Store needs of a clock: `now()`, an aware datetime. `Clock` is one; a test may pass
    any object that has `now()`."""

    def now(self) -> datetime: ...


class Clock:
    """Thread-safe emulator time in UTC."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)


def iso(moment: datetime | None) -> str | None:
    """Twilio's date format: `2026-11-26T20:00:00Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str, name: str) -> timedelta:
    """An ISO 8601 duration such as `PT5M`, `P1D` or `P1DT2H30M`."""
    match = _DURATION.fullmatch(text.strip().upper())
    if not match:
        raise InvalidParameter(f"{name}: {text!r} is not an ISO 8601 duration such as PT5M or P1D")
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    return timedelta(**parts)


def parse_date(text: str, name: str) -> datetime:
    """An ISO 8601 date or date-time; a bare date means its midnight UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{name}: {text!r} is not an ISO 8601 date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
