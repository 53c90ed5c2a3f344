"""What a benchmark reports, the printed table, and `bench/results.json`.

A benchmark returns a `Report`: rows (a figure for Bindery, its baseline in the same run, and their
ratio), targets (met or missed), notes, and free-form details for the JSON file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    metric: str
    bindery: float | str | None
    baseline: float | str | None = None
    unit: str = ""
    ratio: float | None = None


@dataclass
class Target:
    what: str
    value: float | None
    goal: str
    met: bool | None


@dataclass
class Report:
    id: str
    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    wall_s: float = 0.0
    error: str = ""

    def row(
        self,
        metric: str,
        bindery,
        baseline=None,
        unit: str = "",
        ratio: bool | float = True,
    ) -> float | None:
        """Add a row. The ratio is Bindery / baseline when both are numbers, unless `ratio` is
        False (none) or a number (that one: e.g. a median of paired ratios)."""
        value = None
        if not isinstance(ratio, bool):
            value = round(ratio, 3)
        elif ratio and isinstance(bindery, int | float) and isinstance(baseline, int | float):
            value = round(bindery / baseline, 3) if baseline else None
        self.rows.append(Row(metric, _round(bindery), _round(baseline), unit, value))
        return value

    def target(self, what: str, value: float | None, goal: str) -> bool | None:
        """`goal` is `>= 0.6` or `<= 15`; met is None when there is no value."""
        op, limit = goal.split()
        met = None
        if value is not None:
            met = value >= float(limit) if op == ">=" else value <= float(limit)
        self.targets.append(Target(what, _round(value), goal, met))
        return met

    def to_dict(self) -> dict:
        return asdict(self)


def _round(value):
    if isinstance(value, float):
        return round(value, 3) if abs(value) < 10 else round(value, 1)
    return value


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}"
    return str(value)


def table(reports: list[Report]) -> str:
    lines = []
    widths = (50, 11, 11, 8)
    for report in reports:
        load = report.details.get("load_average_after")
        during = f", load average {load[0]}" if load else ""
        lines.append(f"{report.id}  {report.title}  (wall {report.wall_s:.0f} s{during})")
        if report.error:
            lines.append(f"    FAILED: {report.error}")
        if report.rows:
            head = ("metric", "Bindery", "baseline", "ratio")
            lines.append("    " + _columns(head, widths))
            for row in report.rows:
                metric = f"{row.metric} ({row.unit})" if row.unit else row.metric
                cells = (metric, _cell(row.bindery), _cell(row.baseline), _cell(row.ratio))
                lines.append("    " + _columns(cells, widths))
        for target in report.targets:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[target.met]
            lines.append(f"    target {target.what} {target.goal}: {_cell(target.value)} {verdict}")
        for note in report.notes:
            lines.append(f"    note: {note}")
        lines.append("")
    return "\n".join(lines)


def summary(reports: list[Report]) -> str:
    """One line per benchmark: its targets met and missed."""
    lines = []
    for r in reports:
        met = [t for t in r.targets if t.met]
        missed = [f"{t.what} {t.value} (goal {t.goal})" for t in r.targets if t.met is False]
        state = "FAILED" if r.error else f"{len(met)}/{len(r.targets)} targets met"
        lines.append(f"{r.id}: {state}" + (f"; missed: {'; '.join(missed)}" if missed else ""))
    return "\n".join(lines)


def _columns(cells, widths) -> str:
    first, *rest = cells
    return first.ljust(widths[0]) + "".join(
        c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
    )


def write(path: Path, document: dict) -> None:
    """Write atomically: a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    os.replace(temporary, path)


RUN_FIELDS = ("generated_at", "mode", "machine", "versions", "code", "sizes", "bindery_settings")


def merged(previous: dict, run: dict) -> dict:
    """`previous` with the benchmarks of `run` put in (replacing those of the same id): the file's
    own run fields stay those of the run that wrote the rest, and each benchmark from `run`
    carries its run's fields under `run`."""
    ran = {b["id"] for b in run["benchmarks"]}
    kept = [b for b in previous.get("benchmarks", []) if b["id"] not in ran]
    own = {name: run[name] for name in RUN_FIELDS if name in run}
    added = [{**b, "run": own} for b in run["benchmarks"]]
    document = dict(previous)
    document["benchmarks"] = sorted(kept + added, key=lambda b: int(b["id"][1:]))
    document["benchmarks_run"] = [b["id"] for b in document["benchmarks"]]
    document["merged_runs"] = [*previous.get("merged_runs", []), {**own, "benchmarks": sorted(ran)}]
    return document
