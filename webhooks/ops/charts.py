"""Small stacked bar charts, drawn as inline SVG by the overview's template.

`stacked` turns timed events (epoch seconds, series name) into bars: one column per time bucket,
one coloured segment per series. The geometry is computed here; the template only draws it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

WIDTH, HEIGHT = 480, 150
PLOT_TOP, PLOT_BOTTOM, PLOT_LEFT = 8, 128, 32
GAP = 2

COLOURS = {
    "added": "#2e7d32",
    "already_present": "#1565c0",
    "conflict_resolved": "#00897b",
    "conflict": "#ef6c00",
    "failed": "#c62828",
    "recorded": "#90a4ae",
    "superseded": "#b0bec5",
}
PALETTE = ("#6a1b9a", "#f9a825", "#4e342e", "#ad1457", "#283593", "#558b2f", "#00838f", "#757575")


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    segments: list[Segment]
    ticks: list[Tick]
    legend: list[tuple[str, str, int]]  # (series, colour, total)
    top: int  # the value the plot's height stands for
    total: int

    plot_top = PLOT_TOP
    plot_bottom = PLOT_BOTTOM
    plot_left = PLOT_LEFT


def colour_of(name: str, index: int) -> str:
    return COLOURS.get(name) or PALETTE[index % len(PALETTE)]


def _nice_top(value: int) -> int:
    for power in range(0, 9):
        for step in (1, 2, 5):
            top = step * 10**power
            if top >= value:
                return top
    return value


def _label(epoch: float, span: float) -> str:
    return time.strftime("%H:%M" if span <= 2 * 86400 else "%d %H:%M", time.gmtime(epoch))


def stacked(
    title: str,
    events: Iterable[tuple[float, str] | tuple[float, str, int]],
    start: float,
    end: float,
    buckets: int = 12,
    order: list[str] | None = None,
) -> Chart:
    """Events (epoch seconds, series, and optionally how many) between `start` and `end` counted
    into `buckets` columns, stacked by series (in `order`, then the most frequent first)."""
    size = (end - start) / buckets
    counts: list[Counter[str]] = [Counter() for _ in range(buckets)]
    for at, series, *many in events:
        if start <= at <= end:
            counts[min(buckets - 1, int((at - start) // size))][series] += many[0] if many else 1
    totals = Counter()
    for column in counts:
        totals.update(column)
    names = [n for n in (order or []) if n in totals]
    names += [n for n, _ in totals.most_common() if n not in names]
    colours = {name: colour_of(name, i) for i, name in enumerate(names)}
    top = _nice_top(max((sum(c.values()) for c in counts), default=0) or 1)
    plot_width = WIDTH - PLOT_LEFT
    column_width = plot_width / buckets
    scale = (PLOT_BOTTOM - PLOT_TOP) / top
    segments = []
    for index, column in enumerate(counts):
        x = PLOT_LEFT + index * column_width + GAP / 2
        y = float(PLOT_BOTTOM)
        begins = _label(start + index * size, end - start)
        ends = _label(start + (index + 1) * size, end - start)
        for name in names:
            if not column[name]:
                continue
            height = column[name] * scale
            y -= height
            segments.append(
                Segment(
                    round(x, 1),
                    round(y, 1),
                    round(column_width - GAP, 1),
                    round(height, 1),
                    colours[name],
                    f"{begins}-{ends}Z: {column[name]} {name}",
                )
            )
    ticks = [
        Tick(round(PLOT_LEFT + i * column_width, 1), _label(start + i * size, end - start))
        for i in range(0, buckets, max(1, buckets // 4))
    ]
    legend = [(name, colours[name], totals[name]) for name in names]
    return Chart(title, WIDTH, HEIGHT, segments, ticks, legend, top, sum(totals.values()))
