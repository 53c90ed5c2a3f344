"""Every benchmark still runs (`bench/run --smoke`, tiny sizes) and its correctness checks hold.

The figures of a smoke run mean nothing and are not judged: what is judged is that no benchmark
failed to run (a benchmark broken by a change to the code it drives would otherwise go unnoticed
until the next full run) and that each correctness target (no duplicate attempt, the expected
conversations closed and no others) is met.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.main import BENCHMARKS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CORRECTNESS = ("duplicate", "verified", "chosen twice")
"""Targets about correctness, not speed: met at any size."""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return json.loads(out.read_text())


def test_every_benchmark_ran(smoke):
    ran = {b["id"]: b for b in smoke["benchmarks"]}
    assert sorted(ran) == sorted(BENCHMARKS)
    assert {name: b["error"] for name, b in ran.items() if b["error"]} == {}
    assert all(b["rows"] for b in ran.values())


def test_correctness_targets_hold(smoke):
    checked = [
        (b["id"], t)
        for b in smoke["benchmarks"]
        for t in b["targets"]
        if any(word in t["what"] for word in CORRECTNESS)
    ]
    assert checked, "no correctness target in any benchmark"
    assert [(name, t["what"], t["value"]) for name, t in checked if not t["met"]] == []
