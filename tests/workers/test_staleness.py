"""Durations written for people (`staleness.format_duration`, the one place): the cleanup's
limits and reasons, the schedule, the retry warnings."""

import pytest

from workers.staleness import format_duration, judge


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0.4s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m 30s"),
        (3599, "59m 59s"),
        (3600, "1h"),
        (5400, "1h 30m"),
        (21600, "6h"),
        (86399, "1d"),  # 23h 59m 59s rounds to a day, not to "24h"
        (129600, "1d 12h"),
        (float("inf"), "forever"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_a_reason_says_the_limit_as_given():
    verdict = judge(now=10_000.0, limit=60.0, last_message_at=10_000.0 - 7200)
    assert verdict.stale and verdict.reason == "stale: idle 2h (limit 1m)"
