"""What a job needs, built once per process from Settings: Redis, the ledger, the gateway, queues.

Nothing is built at import time. A worker process builds its `Runtime` on the first job it runs
(`current()`); tests and the CLI build one explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis

from workers.dispatch import Dispatcher
from workers.ledger import Ledger
from workers.locks import Locks
from workers.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    connection: redis.Redis = field(default=None)  # type: ignore[assignment]
    twilio: object = None
    """The gateway to Twilio; built from the settings when not given (tests give a stand-in)."""
    queue: object = None
    """Where jobs enqueue jobs; built from the settings when not given."""

    def __post_init__(self) -> None:
        if self.connection is None:
            self.connection = connect(self.settings.redis_url)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.connection)

    @cached_property
    def gateway(self):
        if self.twilio is not None:
            return self.twilio
        from workers.gateway import Gateway  # the SDK is only loaded where Twilio is called

        return Gateway(self.settings)

    @cached_property
    def dispatcher(self) -> Dispatcher:
        if self.queue is not None:
            return self.queue
        return Dispatcher(self.connection, self.settings)

    def locks(self) -> Locks:
        return Locks(self.connection, ttl=self.settings.lock_ttl, wait=self.settings.lock_wait)


def connect(url: str) -> redis.Redis:
    """A client for RQ and the ledger: bytes in and out (RQ needs `decode_responses` off)."""
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
    )


_current: Runtime | None = None


def current() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        _current = Runtime(Settings.from_env())
    return _current


def install(runtime: Runtime | None) -> None:
    """Make `runtime` this process's (the worker does this at start; None forgets it)."""
    global _current
    _current = runtime
