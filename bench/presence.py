"""Presence at scale: one room edited as in fan-out, first without presence, then with every
client moving its caret (an awareness update) several times a second."""

from __future__ import annotations

import asyncio
import random
import time

from bench.common import OwnCpu, Result, Sizes, close_all, connect_many, doc_name, poll_until
from bench.common import percentile as pct
from bench.live import write_loops
from bench.servers import Server
from bench.wsclient import Stats, YClient
from bench.yproto import CaretMover


async def presence(server: Server, sizes: Sizes) -> Result:
    """The same clients and writers, one phase without presence and one with it."""
    doc = doc_name("presence")
    updates = Stats(recording=False)
    clients = await connect_many(server, [doc] * sizes.presence_clients, stats=updates)
    stop_writing = asyncio.Event()
    writers, _ = write_loops(clients, sizes.fanout_writers, sizes.fanout_rate, stop_writing)
    try:
        without = await _measure(server, sizes, clients, updates, None)
        moves = Stats(recording=False)
        for client in clients:
            client.presence_stats = moves
        movers = [CaretMover(random.randrange(1, 2**31), i) for i in range(len(clients))]
        stop_moving = asyncio.Event()
        moving_since = time.perf_counter()
        moving = asyncio.create_task(
            _move_carets(clients, movers, sizes.presence_rate, stop_moving)
        )
        with_presence = await _measure(server, sizes, clients, updates, moves)
        stop_moving.set()
        sent = await moving
        moving_s = time.perf_counter() - moving_since
    finally:
        stop_writing.set()
        await asyncio.gather(*writers)
    # Did every client end up with every other client's last state?
    last = {mover.writer_no: mover.clock for mover in movers}

    def stale() -> int:
        return sum(
            1
            for client in clients
            for writer_no, clock in last.items()
            if writer_no != client.writer_no and client.presence_seen.get(writer_no, 0) < clock
        )

    await poll_until(lambda: stale() == 0, 5.0)
    frames = sum(c.presence_frames for c in clients)
    await close_all(clients)
    cpu_without, cpu_with = without["server_cpu_pct"], with_presence["server_cpu_pct"]
    return {
        "clients": len(clients),
        "writers": sizes.fanout_writers,
        "moves_per_s": sent / moving_s,
        "update_p99_ms_without": without["update_p99_ms"],
        "update_p99_ms_with": with_presence["update_p99_ms"],
        "presence_p50_ms": pct(moves.latencies_ns, 50),
        "presence_p95_ms": pct(moves.latencies_ns, 95),
        "presence_p99_ms": pct(moves.latencies_ns, 99),
        "presence_delivered": moves.delivered,
        "presence_frames_per_client_s": with_presence["presence_frames"]
        / len(clients)
        / with_presence["seconds"],
        "presence_frames_total": frames,
        "stale_after_5s": stale(),
        "server_cpu_pct_without": cpu_without,
        "server_cpu_pct_with": cpu_with,
        "cpu_ratio": cpu_with / cpu_without if cpu_without else float("nan"),
        "loadgen_cpu_pct_with": with_presence["loadgen_cpu_pct"],
    }


async def _measure(
    server: Server, sizes: Sizes, clients: list[YClient], updates: Stats, moves: Stats | None
) -> dict[str, float]:
    """Warm up, then measure one window: server CPU, update latency, presence frames."""
    await asyncio.sleep(sizes.fanout_warmup_s)
    updates.latencies_ns.clear()
    updates.recording = True
    if moves is not None:
        moves.latencies_ns.clear()
        moves.recording = True
    frames0 = sum(c.presence_frames for c in clients)
    cpu0, own, wall0 = server.cpu_seconds(), OwnCpu(), time.perf_counter()
    await asyncio.sleep(sizes.presence_s)
    cpu, wall = server.cpu_seconds() - cpu0, time.perf_counter() - wall0
    updates.recording = False
    if moves is not None:
        moves.recording = False
    return {
        "seconds": wall,
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": own.percent(),
        "update_p99_ms": pct(updates.latencies_ns, 99),
        "presence_frames": sum(c.presence_frames for c in clients) - frames0,
    }


async def _move_carets(
    clients: list[YClient], movers: list[CaretMover], rate: float, stop: asyncio.Event
) -> int:
    """Every client sends ``rate`` awareness updates a second, phases spread evenly."""
    loop = asyncio.get_running_loop()
    total_rate = rate * len(clients)
    start = loop.time()
    sent = 0
    turn = 0
    while not stop.is_set():
        due = int(total_rate * (loop.time() - start)) - sent
        now = time.perf_counter_ns()
        for _ in range(max(0, due)):
            i = turn % len(clients)
            turn += 1
            clients[i].send(movers[i].next_message(now))
        sent += max(0, due)
        await asyncio.sleep(0.002)
    return sent
