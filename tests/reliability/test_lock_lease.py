"""Jobs that outlive their lock's TTL (BINDERY_LOCK_TTL 1 s, every Twilio call 1.5 s).

Each pair is asked for, at once, by two conversations and twice by one of them. Without renewal a
job's lease would run out while its create is in flight and a second job would attempt the same
binding; the lock watchdog renews leases while they are held, so no duplicate is attempted. And
should one happen anyway (a stalled process), Twilio's answer (50416 naming the holder, 50437) is
reconciled and counted: every job finishes, each pair ends in exactly one conversation, and the
ledger agrees with Twilio.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import new_number
from tests.reliability.conftest import client_for
from tests.reliability.harness import participants_of
from workers import keys
from workers.ledger import Ledger
from workers.settings import Settings, SettingsError

pytestmark = pytest.mark.integration

STACK = {"workers": 4, "BINDERY_LOCK_TTL": "1s", "BINDERY_CONFLICT_POLICY": "reject"}
LATENCY_MS = 1500
PAIRS = 8


@pytest.fixture(scope="module")
def lease_storm(stack):
    stack.reset()
    twilio = client_for(stack)
    conversations = twilio.conversations.v1.conversations
    proxy = new_number()
    pairs = [(new_number(), proxy) for _ in range(PAIRS)]

    # Bindery knows each pair already (bound once, then released when its conversation closed),
    # so the contended jobs go straight from the ledger to the create.
    warm = [conversations.create().sid for _ in pairs]
    stack.wait(
        [stack.add(w, address=a, proxy_address=p) for w, (a, p) in zip(warm, pairs, strict=True)]
    )
    stack.wait([stack.set_state(w, state="closed") for w in warm])

    targets = [(conversations.create().sid, conversations.create().sid) for _ in pairs]
    requests_ = []
    for (address, proxy_), (a, b) in zip(pairs, targets, strict=True):
        body = {"address": address, "proxy_address": proxy_}
        requests_ += [(a, body), (b, body), (a, body)]
    stack.faults(latency_ms=LATENCY_MS)
    try:
        with ThreadPoolExecutor(8) as pool:
            job_ids = list(pool.map(lambda r: stack.add(r[0], **r[1]), requests_))
        results = stack.wait(job_ids, timeout=180)
    finally:
        stack.faults()
    return {
        "pairs": pairs,
        "targets": targets,
        "jobs": [results[3 * i : 3 * i + 3] for i in range(PAIRS)],  # by pair
        "held": {sid: participants_of(twilio, sid) for t in targets for sid in t},
        "errors": stack.emulator_stats()["errors"],
        "counters": stack.counters(),
        "ledger": {p: Ledger(stack.redis).pair(keys.pair_id(*p)).holder for p in pairs},
    }


def test_every_job_finishes_and_each_pair_ends_in_one_conversation(lease_storm):
    for (address, proxy), conversations, jobs in zip(
        lease_storm["pairs"], lease_storm["targets"], lease_storm["jobs"], strict=True
    ):
        key = ("pair", address, proxy)
        holders = [sid for sid in conversations if lease_storm["held"][sid][key]]
        assert len(holders) == 1, (key, holders)
        assert lease_storm["held"][holders[0]][key] == 1
        assert lease_storm["ledger"][(address, proxy)] == holders[0]  # the ledger agrees
        for info in jobs:
            assert info["status"] == "finished", info
            outcome, sid = info["outcome"], info["arguments"]["conversation_sid"]
            if outcome["outcome"] in ("added", "already_present"):
                assert sid == holders[0], info
            else:
                assert outcome["outcome"] == "conflict" and outcome["holder"] == holders[0]
        assert sum(info["outcome"]["outcome"] == "added" for info in jobs) == 1


def test_every_duplicate_attempt_was_reconciled_and_counted(lease_storm):
    errors, counters = lease_storm["errors"], lease_storm["counters"]
    print(
        f"\nlock lease: 50416 {errors.get('50416', 0)}, 50437 {errors.get('50437', 0)}, "
        f"counters { {k: v for k, v in sorted(counters.items())} }"
    )
    assert counters.get("reconciled_50416", 0) == errors.get("50416", 0)
    assert counters.get("already_present_at_twilio", 0) == errors.get("50437", 0)


def test_no_duplicate_binding_is_attempted_when_a_lease_expires(lease_storm):
    errors = lease_storm["errors"]
    assert errors.get("50416", 0) + errors.get("50437", 0) == 0, errors


def test_a_lease_shorter_than_a_second_is_refused():
    """The watchdog renews leases every third of the TTL while a job holds them (so a Twilio call
    slower than the TTL is safe, as the storm above shows); below a second that is too tight."""
    with pytest.raises(SettingsError):
        Settings(lock_ttl=0.5).validate()
