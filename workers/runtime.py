"""What a job needs, in one object: settings, Redis, the ledger, Twilio, Twilio's clock, the queue
and its locks.

`Runtime.build(settings)` makes the real parts from one `Settings` (each process's entry point
calls it once); a test passes its own parts instead: a Twilio stand-in, fakeredis, a manual clock,
a recording queue. Nothing is built at import time and nothing here is process-wide: the worker
process installs its runtime for its jobs (`workers/jobs.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from workers.ledger import Ledger
from workers.locks import Locks
from workers.queue import JobQueue
from workers.settings import Settings
from workers.twilio_clock import TwilioClock


@dataclass
class Runtime:
    settings: Settings
    connection: redis.Redis
    ledger: Ledger
    queue: JobQueue
    clock: TwilioClock
    twilio: Any = None
    """The gateway to Twilio (`workers.gateway.Gateway`, or a test's stand-in); None in a process
    that never calls Twilio."""
    renew_locks: bool = True

    @classmethod
    def build(
        cls,
        settings: Settings,
        connection: redis.Redis | None = None,
        *,
        twilio: Any = None,
        queue: Any = None,
        clock: Any = None,
        calls_twilio: bool = True,
        renew_locks: bool = True,
    ) -> Runtime:
        """The real parts, from the settings, but for those given."""
        connection = connection if connection is not None else connect(settings.redis_url)
        clock = clock if clock is not None else TwilioClock()
        if twilio is None and calls_twilio:
            from workers.gateway import Gateway  # the SDK is only loaded where Twilio is called

            twilio = Gateway(settings, clock)
        return cls(
            settings=settings,
            connection=connection,
            ledger=Ledger(connection),
            queue=queue if queue is not None else JobQueue(connection, settings),
            clock=clock,
            twilio=twilio,
            renew_locks=renew_locks,
        )

    def locks(self) -> Locks:
        return Locks(
            self.connection,
            ttl=self.settings.lock_ttl,
            wait=self.settings.lock_wait,
            renew=self.renew_locks,
        )


def connect(url: str, socket_timeout: float = 5.0) -> redis.Redis:
    """A client for RQ and the ledger: bytes in and out (RQ needs `decode_responses` off)."""
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=2, health_check_interval=30
    )
