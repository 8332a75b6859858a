"""Helpers shared by the scenarios: sizes, clients in bulk, percentiles, CPU of this process."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from bench.servers import Server
from bench.wsclient import Stats, YClient, connect, frame
from bench.yproto import ArrayWriter

Result = dict[str, object]
SAT_STEPS = (500, 1000, 1500, 2000, 3000, 4500, 6500, 9000, 13000, 16000, 20000, 25000, 32000)


@dataclass
class Sizes:
    """Every size and duration of a run; ``quick()`` shrinks them for a smoke test."""

    fanout_clients: int = 100
    fanout_writers: int = 10
    fanout_rate: float = 10.0  # updates/s per writer
    fanout_warmup_s: float = 2.0
    fanout_s: float = 12.0
    presence_clients: int = 100
    presence_rate: float = 5.0  # awareness updates/s per client (caret moves)
    presence_s: float = 10.0  # measured, in each phase (without and with presence)
    sat_clients: int = 20
    sat_steps: list[int] = field(default_factory=lambda: list(SAT_STEPS))
    sat_step_s: float = 3.0
    sat_p99_limit_ms: float = 100.0
    burst_updates: int = 20_000
    cold_sizes: list[int] = field(default_factory=lambda: [20_000, 100_000])
    cold_store_max: int = 20_000  # pycrdt-store commits ~900 updates/s: larger takes minutes
    cold_repeats: int = 3
    mem_docs: int = 1000
    mem_cycles: int = 10_000
    stock_providers: int = 100
    stock_rounds: int = 3
    stock_fill: int = 200  # updates in the document the providers join
    bigjoin_mb: float = 20.0  # encoded size of the large document (bench.bigdoc)
    bigjoin_clients: int = 150

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            fanout_clients=30,
            fanout_writers=5,
            fanout_warmup_s=1.0,
            fanout_s=3.0,
            presence_clients=30,
            presence_s=3.0,
            sat_steps=[500, 2000, 8000],
            sat_step_s=1.5,
            burst_updates=2000,
            cold_sizes=[2000, 10_000],
            cold_store_max=2000,
            cold_repeats=1,
            mem_docs=100,
            mem_cycles=500,
            stock_providers=30,
            stock_rounds=1,
            bigjoin_mb=4.0,
            bigjoin_clients=30,
        )


def doc_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_writer(writer_no: int) -> ArrayWriter:
    return ArrayWriter(random.randrange(1, 2**31), writer_no)


def prebuilt_frames(writer: ArrayWriter, n: int) -> list[bytes]:
    """``n`` update frames built before the clock starts (send time 0: only counted)."""
    return [frame(writer.next_message(i, 0)) for i in range(n)]


async def send_frames(client: YClient, frames: list[bytes], chunk: int = 500) -> None:
    """Hand frames to the kernel as fast as the socket takes them; return once all are out."""
    for i in range(0, len(frames), chunk):
        part = frames[i : i + chunk]
        client.writes_sent += len(part)
        assert client.transport is not None
        client.transport.write(b"".join(part))
        await client.drain()
    await poll_until(lambda: client.write_buffer_size() == 0, 60.0, 0.0002)


async def poll_until(done: Callable[[], bool], wait_s: float, every_s: float = 0.01) -> bool:
    """Check ``done`` every ``every_s`` until it holds (True) or ``wait_s`` passed (False)."""
    deadline = time.monotonic() + wait_s
    while not done():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every_s)
    return True


async def connect_many(
    server: Server,
    docs: list[str],
    stats: Stats | None = None,
    saved: bool = False,
    batch: int = 25,
) -> list[YClient]:
    """One client per entry of ``docs`` (writer number = index), ``batch`` at a time."""
    clients: list[YClient] = []
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        clients += await asyncio.gather(
            *(
                connect(server.port, server.path(doc, saved), writer_no=start + i, stats=stats)
                for i, doc in enumerate(part)
            )
        )
    return clients


async def close_all(clients: list[YClient], batch: int = 100) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(*(c.close() for c in clients[start : start + batch]))


def percentile(values_ns: list[int], q: float) -> float:
    """The q-th percentile (nearest rank) in milliseconds; NaN when empty."""
    if not values_ns:
        return float("nan")
    ordered = sorted(values_ns)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[rank] / 1e6


class OwnCpu:
    """CPU seconds this (load generator) process used since creation."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._t0 = self._now()
        self._wall0 = time.perf_counter()

    def _now(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def percent(self) -> float:
        wall = time.perf_counter() - self._wall0
        return 100 * (self._now() - self._t0) / wall if wall > 0 else 0.0
