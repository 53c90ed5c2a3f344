"""A small HTTP/1.1 load generator on asyncio, and latency percentiles.

Requests are pre-built bytes (signed in advance, see `signing`), written on keep-alive connections;
answers are read by their Content-Length, so the generator does little more than the kernel's work.
Two modes:

- `closed_loop`: N connections, each sending its next request as soon as the last is answered: the
  rate at saturation.
- `open_loop`: requests start on a fixed schedule (`rate` per second) whatever the server does, and
  latency is counted from the scheduled start, so a slow answer delays no measurement (no
  coordinated omission).

`trivial_server` answers every request with a fixed 200 and nothing else, to measure the generator's
own ceiling.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    sent: int = 0
    answered: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    reused: int = 0
    """Requests sent a second time because the pre-built ones ran out."""

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed if self.elapsed else 0.0

    def summary(self) -> dict:
        p = percentiles(self.latencies)
        return {
            "answered": self.answered,
            "rate_per_s": round(self.rate, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": self.failures,
            "reused_requests": self.reused,
            "latency_ms": {k: round(v * 1000, 2) for k, v in p.items()},
        }


def percentiles(values: Sequence[float], points=(50, 90, 99, 99.9)) -> dict[str, float]:
    """Nearest-rank percentiles, plus the max."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for p in points:
        rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        out[f"p{p:g}"] = ordered[rank]
    out["max"] = ordered[-1]
    return out


RECYCLE = 10
"""Requests a connection carries before it is closed and a new one opened. gunicorn's workers each
keep the connections they accepted, so a fixed set of kept-alive connections can land mostly on one
worker (seen: 31 of 32) and cap a run at that one process (its GIL), at random from run to run.
Re-opening every few requests spreads them, as a population of senders would; both the bare app and
Bindery pay the same accepts."""


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.carried = 0

    async def exchange(self, raw: bytes) -> int:
        """Send one request, read its whole answer; returns the status. A kept-alive connection
        the server closed meanwhile (gunicorn's keep-alive is 2 s) is reopened once, as HTTP
        clients do; any other failure raises."""
        if self.writer is None:
            return await self._exchange(raw)
        try:
            return await self._exchange(raw)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                raise
            self.close()
            return await self._exchange(raw)

    async def _exchange(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.carried = 0
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17 : end])
            if length:
                await self.reader.readexactly(length)
        self.carried += 1
        if b"\r\nconnection: close" in lower or self.carried >= RECYCLE:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class _Source:
    """The pre-built requests in order, then again from the start (counted as reused)."""

    def __init__(self, requests: Sequence[bytes]):
        self.requests = requests
        self.index = 0

    def next(self) -> tuple[bytes, bool]:
        raw = self.requests[self.index % len(self.requests)]
        reused = self.index >= len(self.requests)
        self.index += 1
        return raw, reused


async def _closed_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    connections: int,
    duration: float,
    warmup: float,
) -> Result:
    result, source = Result(), _Source(requests)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def user() -> None:
        connection = _Connection(host, port)
        while (now := time.perf_counter()) < stop_at:
            raw, reused = source.next()
            try:
                status = await connection.exchange(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                if now >= measure_from:
                    result.failures += 1
                continue
            done = time.perf_counter()
            if measure_from <= now and done <= stop_at:
                result.answered += 1
                result.reused += reused
                result.statuses[status] += 1
                result.latencies.append(done - now)
        connection.close()

    await asyncio.gather(*(user() for _ in range(connections)))
    result.sent = source.index
    result.elapsed = duration
    return result


async def _open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    duration: float,
    max_connections: int,
) -> Result:
    result, source = Result(), _Source(requests)
    idle: list[_Connection] = []
    opened = 0
    slots = asyncio.Semaphore(max_connections)
    total = int(rate * duration)
    start = time.perf_counter() + 0.05

    async def one(scheduled: float) -> None:
        nonlocal opened
        async with slots:  # waiting here is part of the latency: it is counted from `scheduled`
            if idle:
                connection = idle.pop()
            else:
                connection = _Connection(host, port)
                opened += 1
            raw, reused = source.next()
            try:
                status = await connection.exchange(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                result.failures += 1
                return
            result.latencies.append(time.perf_counter() - scheduled)
            result.answered += 1
            result.reused += reused
            result.statuses[status] += 1
            idle.append(connection)

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    result.sent = source.index
    for connection in idle:
        connection.close()
    return result


def closed_loop(
    url: str,
    requests: Sequence[bytes],
    connections: int = 32,
    duration: float = 5.0,
    warmup: float = 1.0,
) -> Result:
    host, port = _host_port(url)
    return asyncio.run(_closed_loop(host, port, requests, connections, duration, warmup))


def open_loop(
    url: str,
    requests: Sequence[bytes],
    rate: float,
    duration: float,
    max_connections: int = 64,
) -> Result:
    host, port = _host_port(url)
    return asyncio.run(_open_loop(host, port, requests, rate, duration, max_connections))


def _host_port(url: str) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = netloc.partition(":")
    return host, int(port or 80)


# -- the generator's own ceiling ---------------------------------------------------------------

_TRIVIAL_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
)


class _Trivial(asyncio.Protocol):
    """Answers each complete request (head and Content-Length body) with a fixed 200."""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(_TRIVIAL_ANSWER)


def trivial_server(port: int) -> None:
    """Serve `_Trivial` on 127.0.0.1:`port` until killed (run in its own process)."""

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Trivial, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def cycle_prefix(requests: Sequence[bytes], count: int) -> list[bytes]:
    """`count` requests taken from `requests` in a cycle."""
    return list(itertools.islice(itertools.cycle(requests), count))
