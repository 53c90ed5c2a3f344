"""How much load each benchmark applies: the full run and `--quick` (under 3 minutes in all)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    retries: int
    """Extra rounds B1 and B2 may run in place of rounds during which other users took over
    `noise.LIMIT` cores (see `bench.noise`)."""
    b1_rounds: int
    """Interleaved rounds (bare app, then Bindery) at saturation and at half load; medians count."""
    b1_seconds: float
    """Seconds of each saturation and half-load run (after `b1_warmup`)."""
    b1_warmup: float
    b1_connections: int
    """Connections of the closed loop (gunicorn has 2 x 4 threads, so this saturates it)."""
    b1_tuned: bool
    """Also run the saturation rounds under the tuned gunicorn setting (an untargeted row)."""
    b2_seconds: float
    """Seconds at 200 pre-events per second, for Bindery and for the bare app each, in all."""
    b2_rounds: int
    """Interleaved rounds (Bindery, then the bare app) those seconds are split into."""
    b3_adds: int
    """Participant-adds of each kind (see `bench.adds.KINDS`), for Bindery and for the direct run."""
    b4_jobs: int
    """Jobs of each kind (no-op, identity add, pair add) in all, split over the rounds."""
    b5_seconds: float
    """Rough seconds per level and side: adds = 9 per second per worker x this."""
    b6_conversations: tuple[int, ...]
    """Sizes of the account B6 scans (conversations, stale ones included)."""
    b7_pairs: tuple[int, ...] = (100_000, 1_000_000)
    """Sizes of the ledger B7 measures (held pairs, one conversation each)."""
    b7_lifecycles_per_hour: int = 500
    """Conversation lifecycles per simulated hour of B7's week."""
    b8_conversations: tuple[int, ...] = (1_000, 10_000)
    """Sizes of the account B8 reconciles."""
    b9_sessions: int = 500
    """Sessions B9 creates (two customers each), for Bindery and for the direct run."""


FULL = Sizes(
    name="full",
    retries=5,
    b1_rounds=5,
    b1_seconds=4.0,
    b1_warmup=1.0,
    b1_connections=32,
    b1_tuned=True,
    b2_seconds=15.0,
    b2_rounds=5,
    b3_adds=200,
    b4_jobs=1500,
    b5_seconds=8.0,
    b6_conversations=(10_000, 50_000),
)

QUICK = Sizes(
    name="quick",
    retries=1,
    b1_rounds=3,
    b1_seconds=1.5,
    b1_warmup=0.5,
    b1_connections=32,
    b1_tuned=False,
    b2_seconds=6.0,
    b2_rounds=2,
    b3_adds=32,
    b4_jobs=600,
    b5_seconds=1.5,
    b6_conversations=(1_000, 2_000),
    b7_pairs=(10_000, 50_000),
    b7_lifecycles_per_hour=50,
    b8_conversations=(100, 500),
    b9_sessions=40,
)

SMOKE = Sizes(
    name="smoke",
    retries=0,
    b1_rounds=1,
    b1_seconds=0.5,
    b1_warmup=0.2,
    b1_connections=8,
    b1_tuned=False,
    b2_seconds=1.0,
    b2_rounds=1,
    b3_adds=8,
    b4_jobs=60,
    b5_seconds=0.3,
    b6_conversations=(100, 200),
    b7_pairs=(1_000, 2_000),
    b7_lifecycles_per_hour=5,
    b8_conversations=(20, 40),
    b9_sessions=6,
)
"""Tiny sizes for `bench/run --smoke`: that every benchmark still runs and its correctness checks
hold (the test suite runs it); its figures mean nothing."""
