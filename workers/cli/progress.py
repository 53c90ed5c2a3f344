"""Progress of long CLI operations, on stderr: a bar when the total is known, a running count when
it is not (a scan of Twilio's pages), redrawn in place at most ten times a second; nothing at all
when stderr is not a terminal, so piped output and logs stay clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_EVERY = 0.1
"""Seconds between redraws."""


class Progress:
    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        every: float = REDRAW_EVERY,
    ):
        self.label = label
        self.every = every
        self.total = total
        self.count = 0
        self.stream = stream or sys.stderr
        self.shown = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._drawn_at = 0.0

    def __call__(self, amount: int = 1) -> None:
        """One more done (the `seen` callback of cleanup and reconcile)."""
        self.count += amount
        if self.shown and time.monotonic() - self._drawn_at >= self.every:
            self._draw()

    def done(self) -> None:
        if self.shown:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        if self.shown:
            self._draw()
        return self

    def __exit__(self, *_) -> None:
        self.done()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = f"{self.count / elapsed:.1f}/s"
        if not self.total:
            return f"{self.label}: {self.count}  {rate}"
        filled = min(BAR_WIDTH, round(BAR_WIDTH * self.count / self.total))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        percent = 100 * self.count // self.total
        return f"{self.label} [{bar}] {self.count}/{self.total} {percent:3d}%  {rate}"

    def _draw(self) -> None:
        self._drawn_at = time.monotonic()
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()
