"""B5: scaling. B3's identity adds (one Twilio call each, so the baseline does the same calls) with
1, 2, 4 and 8 worker processes, against the direct creates with as many calls in flight.

CPU time of every process is read from /proc over each run, to tell which is the limit when scaling
stops being linear: the machine's CPUs, the emulator, or Bindery itself.
"""

from __future__ import annotations

import os

from bench import adds
from bench.harness import CpuMeter, Stack
from bench.report import Report
from bench.sizes import Sizes

LATENCY_MS = 100
LEVELS = (1, 2, 4, 8)
PER_WORKER_RATE = 9
"""Adds/s one worker manages at 100 ms per call, to size each level's batch."""


def run(sizes: Sizes) -> Report:
    report = Report("B5", f"scaling: identity adds, emulator +{LATENCY_MS} ms, workers {LEVELS}")
    stack = Stack()
    try:
        _measure(stack, sizes, report)
    finally:
        stack.stop()
    return report


def _measure(stack: Stack, sizes: Sizes, report: Report) -> None:
    stack.start_web()
    meter = CpuMeter(stack.cpu_parts())
    levels = {}
    for processes in LEVELS:
        stack.start_workers(processes)
        count = max(10, int(PER_WORKER_RATE * processes * sizes.b5_seconds))
        ours_adds = adds.prepare(stack, "identity", count)
        direct_adds = adds.prepare(stack, "identity", count)
        stack.emulator.faults(latency_ms=LATENCY_MS)
        try:
            meter.start()
            with adds.MemorySampler(stack) as memory:
                ours = adds.run_bindery(stack, ours_adds)
            ours_cpu = meter.stop()
            meter.start()
            direct = adds.run_direct(stack, direct_adds, in_flight=processes)
            direct_cpu = meter.stop()
        finally:
            stack.emulator.faults()
        levels[processes] = {
            "bindery": ours,
            "direct": direct,
            "cpu_cores_bindery_run": ours_cpu,
            "cpu_cores_direct_run": direct_cpu,
            "memory_peak": memory.peak,
        }
        report.row(
            f"{processes} worker(s): adds/s", ours["ops_per_s"], direct["ops_per_s"], "adds/s"
        )

    one = levels[LEVELS[0]]
    for processes, level in levels.items():
        ours_eff = level["bindery"]["ops_per_s"] / (processes * one["bindery"]["ops_per_s"])
        direct_eff = level["direct"]["ops_per_s"] / (processes * one["direct"]["ops_per_s"])
        level["efficiency"] = {"bindery": round(ours_eff, 3), "direct": round(direct_eff, 3)}
        report.row(f"{processes} worker(s): scaling efficiency", ours_eff, direct_eff)
    for processes, level in levels.items():
        cpu = level["cpu_cores_bindery_run"]
        report.row(
            f"{processes} worker(s): CPU cores busy (all processes)",
            cpu["total"],
            level["cpu_cores_direct_run"]["total"],
            ratio=False,
        )

    for processes, level in levels.items():
        report.row(
            f"{processes} worker(s): peak RSS, web + workers",
            level["memory_peak"]["rss_mb"],
            unit="MB",
        )

    top = levels[LEVELS[-1]]
    report.target(
        f"scaling efficiency at {LEVELS[-1]} workers", top["efficiency"]["bindery"], ">= 0.9"
    )
    report.notes.append(_verdict(levels))
    report.details = {"levels": levels, "cpu_count": os.cpu_count()}


def _verdict(levels: dict) -> str:
    """Which resource stops linear scaling, from the efficiencies and the CPU use."""
    cpus = os.cpu_count() or 1
    for processes, level in levels.items():
        if level["efficiency"]["bindery"] >= 0.8:
            continue
        cpu = level["cpu_cores_bindery_run"]
        busiest = max((k for k in cpu if k != "total"), key=cpu.get)
        if cpu["total"] >= 0.8 * cpus:
            return (
                f"linear up to {processes // 2} worker(s); at {processes} the CPU is the limit "
                f"({cpu['total']} of {cpus} cores busy, most by {busiest})"
            )
        if level["efficiency"]["direct"] < 0.8:
            return (
                f"linear up to {processes // 2} worker(s); at {processes} the emulator is the "
                f"limit (the direct baseline stops scaling too)"
            )
        return (
            f"linear up to {processes // 2} worker(s); at {processes} neither CPU "
            f"({cpu['total']} of {cpus} cores) nor the emulator is saturated: Bindery itself is"
        )
    last = max(levels)
    cpu = levels[last]["cpu_cores_bindery_run"]["total"]
    return (
        f"near-linear up to {last} workers: neither the emulator nor the CPU "
        f"({cpu} of {cpus} cores busy at {last}) is the limit yet"
    )
