"""Twilio faults: 429 bursts, 500s and added latency (see `storms.PHASES`).

Retries are bounded and spaced by a jittered exponential backoff (no retry storm: the calls counted
by the emulator stay within what every job using every attempt could make), and once the faults
stop everything converges to the expected state, with no duplicate binding attempted.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from tests.reliability.storms import MAX_RETRIES
from workers.queue import BACKOFF_BASE, BACKOFF_CAP

pytestmark = pytest.mark.integration


def test_faults_were_injected(fault_storm):
    errors = fault_storm.errors_during
    assert errors.get("20429", 0) >= 10 and errors.get("20500", 0) >= 10, errors


def test_retries_are_bounded(fault_storm):
    for job_id, info in fault_storm.results.items():
        attempts = len(info["attempts"])  # each attempt: the failed ones, and the one that worked
        runs = 1 + (job_id in fault_storm.replayed)
        assert attempts <= (1 + MAX_RETRIES) * runs, info
    calls, bound = fault_storm.calls(), fault_storm.bound()
    used = fault_storm.calls_if_each_attempt_called_fully()
    retried = sum(1 for info in fault_storm.results.values() if info["attempt_count"] > 1)
    print(
        f"\ntwilio faults: {len(fault_storm.jobs)} jobs, {retried} retried, "
        f"{len(fault_storm.replayed)} replayed after exhausting {MAX_RETRIES} retries; "
        f"faults injected {fault_storm.errors_during}; {calls} Twilio calls "
        f"(bound {bound} for every attempt allowed, {used} for the attempts made); "
        f"webhooks {dict(fault_storm.webhook_answers)}"
    )
    assert calls <= bound, (calls, bound)
    # Tighter: no attempt made more calls than one attempt needs (no hidden retries below the job).
    assert calls <= used, (calls, used)


def test_retries_back_off_with_jitter(fault_storm):
    intervals = {}
    for job_id, (kind, _, _) in fault_storm.jobs.items():
        if kind == "event":
            continue
        planned = fault_storm.retry_intervals(job_id)
        intervals[job_id] = tuple(planned)
        assert len(planned) == MAX_RETRIES
        for i, interval in enumerate(planned):
            base = min(BACKOFF_CAP, BACKOFF_BASE * 2**i)
            assert max(1, round(base * 0.5)) <= interval <= round(base * 1.5), planned
        # The scheduler works in whole seconds: a retry runs at most 1 s before its interval.
        attempts = [
            datetime.fromisoformat(a["at"]).timestamp()
            for a in fault_storm.results[job_id]["attempts"]
        ]
        for i, (earlier, later) in enumerate(zip(attempts, attempts[1:], strict=False)):
            if job_id not in fault_storm.replayed:
                assert later - earlier >= planned[i] - 1.01, (job_id, attempts, planned)
    assert len(set(intervals.values())) > len(intervals) // 4  # jittered, not in lockstep


def test_everything_converges_to_the_expected_state(fault_storm):
    assert {i["status"] for i in fault_storm.results.values()} == {"finished"}
    for sid, expected in fault_storm.expected.items():
        assert fault_storm.held[sid] == expected, sid
    assert fault_storm.state_now == fault_storm.states
    allowed = {  # a retried state change may run after a newer one: superseded, harmlessly
        "pair": {"added", "already_present"},
        "identity": {"added", "already_present"},
        "state": {"changed", "unchanged", "superseded"},
        "event": {"recorded"},
    }
    outcomes = Counter()
    for job_id, (kind, _, _) in fault_storm.jobs.items():
        outcome = fault_storm.results[job_id]["outcome"]["outcome"]
        assert outcome in allowed[kind], (kind, fault_storm.results[job_id])
        outcomes[outcome] += 1
    print(f"\noutcomes after the faults: {dict(outcomes)}")
    errors = fault_storm.stats["errors"]
    for code in ("50416", "50437", "50433"):
        assert errors.get(code, 0) == 0, errors


def test_nothing_is_called_once_converged(fault_storm):
    assert fault_storm.stats_later["calls"] == fault_storm.stats["calls"]
