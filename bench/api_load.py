"""A small HTTP/1.1 load generator for loopback benchmarks (asyncio, keep-alive, no deps).

Two modes: closed loop (N connections each send the next request as soon as the previous
answer arrived: the server's throughput) and open loop (requests start on a fixed schedule
whatever the server does: latency at a given rate). In open loop a request's latency is measured
from when it was due, not when a connection became free, so a slow server cannot hide its
queueing (no coordinated omission). Every run is bounded in time and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]


REQUEST_TIMEOUT = 10.0


class _Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str) -> int:
        """Send one GET and read its answer; a server that stalls is an error, not a hang."""
        return await asyncio.wait_for(self._request(path), REQUEST_TIMEOUT)

    async def _request(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}\r\n".encode("ascii")
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _record(result: LoadResult, status: int, started: float) -> None:
    result.latencies_ms.append((time.perf_counter() - started) * 1000)
    result.statuses[status] = result.statuses.get(status, 0) + 1


async def _closed_loop(host, port, paths, headers, connections, seconds) -> LoadResult:
    result = LoadResult(seconds)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**12))

    async def worker() -> None:
        conn = _Connection(host, port, headers)
        while time.perf_counter() < deadline:
            path = paths[next(counter) % len(paths)]
            started = time.perf_counter()
            try:
                status = await conn.request(path)
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                result.errors += 1
                await conn.close()
                continue
            _record(result, status, started)
        await conn.close()

    begun = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.seconds = time.perf_counter() - begun
    return result


async def _open_loop(host, port, paths, headers, rate, seconds, connections) -> LoadResult:
    result = LoadResult(seconds)
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(host, port, headers))
    begun = time.perf_counter()
    total = int(rate * seconds)
    tasks = []

    async def one(i: int, due: float) -> None:
        conn = await pool.get()
        try:
            status = await conn.request(paths[i % len(paths)])
            _record(result, status, due)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
            result.errors += 1
            await conn.close()
        finally:
            pool.put_nowait(conn)

    for i in range(total):
        due = begun + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - begun
    while not pool.empty():
        await pool.get_nowait().close()
    return result


def closed_loop(
    host: str,
    port: int,
    paths: Sequence[str],
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> LoadResult:
    """As many requests as `connections` keep-alive connections get answered in `seconds`."""
    return asyncio.run(_closed_loop(host, port, paths, headers, connections, seconds))


def open_loop(
    host: str,
    port: int,
    paths: Sequence[str],
    headers: dict[str, str],
    rate: float,
    seconds: float,
    connections: int = 16,
) -> LoadResult:
    """`rate` requests per second for `seconds`, latency counted from each request's due time."""
    return asyncio.run(_open_loop(host, port, paths, headers, rate, seconds, connections))
