"""Locks: bounded waits, a fixed order, and leases renewed while held."""

import time

import pytest

from workers.locks import LockBusy, LockLost, Locks


def test_a_busy_lock_is_not_waited_for_forever(fake_redis):
    with Locks(fake_redis, ttl=5, wait=0.2) as first:
        first.acquire(["bindery:lock:a"])
        second = Locks(fake_redis, ttl=5, wait=0.2)
        with pytest.raises(LockBusy):
            second.acquire(["bindery:lock:b", "bindery:lock:a"])
        assert not fake_redis.exists("bindery:lock:b")  # what it had taken, it gave back


def test_the_lease_is_renewed_while_held(fake_redis):
    with Locks(fake_redis, ttl=1, wait=0.1) as held:
        held.acquire(["bindery:lock:a"])
        # A slow Twilio call: held until the watchdog renewed the lease 4 times (over a TTL).
        acquired, renewals, last = time.monotonic(), 0, fake_redis.pttl("bindery:lock:a")
        while renewals < 4 or time.monotonic() - acquired < 1.2:
            assert time.monotonic() - acquired < 10, f"{renewals} renewals in 10 s"
            assert fake_redis.exists("bindery:lock:a")
            time.sleep(0.02)
            now = fake_redis.pttl("bindery:lock:a")
            renewals += now > last
            last = now
        assert fake_redis.exists("bindery:lock:a")
        with pytest.raises(LockBusy):
            Locks(fake_redis, ttl=1, wait=0.1).acquire(["bindery:lock:a"])
        held.refresh()
    assert not fake_redis.exists("bindery:lock:a")


def test_a_lost_lease_stops_the_job_before_it_writes(fake_redis):
    with Locks(fake_redis, ttl=5, wait=0.1) as held:
        held.acquire(["bindery:lock:a"])
        fake_redis.delete("bindery:lock:a")  # the lease ran out while the process stalled
        with pytest.raises(LockLost):
            held.refresh()
