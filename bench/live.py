"""Live editing scenarios: fan-out in a 100-client room, and saturation with 20 writers."""

from __future__ import annotations

import asyncio
import time

from bench.common import (
    OwnCpu,
    Result,
    Sizes,
    close_all,
    connect_many,
    doc_name,
    new_writer,
    poll_until,
)
from bench.common import percentile as pct
from bench.servers import Server
from bench.wsclient import Stats, YClient
from bench.yproto import ArrayWriter


async def _await_deliveries(clients: list[YClient], expected: int, wait_s: float) -> int:
    """Wait until the clients saw ``expected`` markers in all (or time out); return seen."""
    await poll_until(lambda: sum(c.seen for c in clients) >= expected, wait_s)
    return sum(c.seen for c in clients)


def write_loops(
    clients: list[YClient], writers: int, rate: float, stop: asyncio.Event
) -> tuple[list[asyncio.Task[None]], list[int]]:
    """The first ``writers`` clients each write ``rate`` updates/s (phases offset) until
    ``stop``; returns the tasks and each writer's count of updates sent."""
    array_writers = [new_writer(i) for i in range(writers)]
    sent = [0] * writers
    loop = asyncio.get_running_loop()
    period = 1.0 / rate

    async def write_loop(i: int) -> None:
        client, writer = clients[i], array_writers[i]
        next_t = loop.time() + period * i / writers
        while not stop.is_set():
            await asyncio.sleep(max(0.0, next_t - loop.time()))
            client.send(writer.next_message(sent[i], time.perf_counter_ns()))
            sent[i] += 1
            next_t += period

    return [asyncio.create_task(write_loop(i)) for i in range(writers)], sent


async def fanout(server: Server, sizes: Sizes) -> Result:
    """N clients in one document, W of them writing at a fixed rate each."""
    doc = doc_name("fanout")
    stats = Stats(recording=False)
    clients = await connect_many(server, [doc] * sizes.fanout_clients, stats=stats)
    stop = asyncio.Event()
    tasks, sent = write_loops(clients, sizes.fanout_writers, sizes.fanout_rate, stop)
    await asyncio.sleep(sizes.fanout_warmup_s)
    stats.latencies_ns.clear()
    stats.recording = True
    cpu0, own = server.cpu_seconds(), OwnCpu()
    await asyncio.sleep(sizes.fanout_s)
    cpu = server.cpu_seconds() - cpu0
    # The room at work (every client connected, writers writing): the process serving it,
    # and with its children (OpenDPIA's bridge child, which serves no WebSocket).
    rss, rss_all = server.rss_bytes(serving_only=True), server.rss_bytes()
    stats.recording = False
    own_pct = own.percent()
    stop.set()
    await asyncio.gather(*tasks)
    total = sum(sent)
    expected = sum(total - (sent[i] if i < len(sent) else 0) for i in range(len(clients)))
    seen = await _await_deliveries(clients, expected, 5.0)
    await close_all(clients)
    return {
        "clients": len(clients),
        "writers": len(sent),
        "delivered": stats.delivered,
        "p50_ms": pct(stats.latencies_ns, 50),
        "p99_ms": pct(stats.latencies_ns, 99),
        "max_ms": pct(stats.latencies_ns, 100),
        "cpu_us_per_msg": 1e6 * cpu / max(1, stats.delivered),
        "server_cpu_pct": 100 * cpu / sizes.fanout_s,
        "loadgen_cpu_pct": own_pct,
        "lost": expected - seen,
        "rss_mb": rss / 1e6,
        "rss_with_children_mb": rss_all / 1e6,
    }


async def saturation(server: Server, sizes: Sizes) -> Result:
    """All clients write; the total rate rises step by step until p99 or delivery fails."""
    doc = doc_name("saturation")
    clients = await connect_many(server, [doc] * sizes.sat_clients)
    writers = [new_writer(i) for i in range(len(clients))]
    counters = [0] * len(clients)
    steps: list[Result] = []
    best = 0
    stop_reason = "all steps passed"
    # Warm-up (JIT, allocator, first room growth), not measured.
    await _paced_writes(clients, writers, counters, sizes.sat_steps[0], 1.0)
    await _await_deliveries(clients, 10**12, 0.5)
    for rate in sizes.sat_steps:
        for attempt in (1, 2):  # a failing step is tried once more before it counts
            step = await _step(server, clients, writers, counters, rate, sizes.sat_step_s)
            step["attempt"] = attempt
            steps.append(step)
            print(f"    step {rate:>6}/s: {_fmt_step(step)}", flush=True)
            failure = _failure(step, rate, sizes)
            if failure is None:
                break
            # let the backlog of the failed attempt drain before the retry counts anew
            await _await_deliveries(clients, sum(counters) * (len(clients) - 1), 5.0)
        if failure is not None:
            stop_reason = failure
            break
        best = rate
    for client in clients:
        client.abort()  # a flooded server may take long to answer a close
    return {"max_updates_per_s": best, "stop": stop_reason, "steps": steps}


async def _step(
    server: Server,
    clients: list[YClient],
    writers: list[ArrayWriter],
    counters: list[int],
    rate: int,
    step_s: float,
) -> Result:
    stats = Stats()
    for client in clients:
        client.stats = stats
    seen0 = sum(c.seen for c in clients)
    cpu0, own, wall0 = server.cpu_seconds(), OwnCpu(), time.perf_counter()
    sent = await _paced_writes(clients, writers, counters, rate, step_s)
    expected = sent * (len(clients) - 1)
    seen = await _await_deliveries(clients, seen0 + expected, 2.0) - seen0
    cpu, wall = server.cpu_seconds() - cpu0, time.perf_counter() - wall0
    for client in clients:
        client.stats = None
    return {
        "rate": rate,
        "achieved": sent / step_s,
        "p50_ms": pct(stats.latencies_ns, 50),
        "p99_ms": pct(stats.latencies_ns, 99),
        "lost": expected - seen,
        "cpu_us_per_msg": 1e6 * cpu / max(1, stats.delivered),
        "server_cpu_pct": 100 * cpu / wall,
        "loadgen_cpu_pct": own.percent(),
    }


def _failure(step: Result, rate: int, sizes: Sizes) -> str | None:
    if int(step["lost"]) > 0:  # type: ignore[call-overload]
        return f"not all delivered within 2 s at {rate}/s"
    if float(step["p99_ms"]) > sizes.sat_p99_limit_ms:  # type: ignore[arg-type]
        return f"p99 > {sizes.sat_p99_limit_ms:g} ms at {rate}/s"
    if float(step["achieved"]) < 0.95 * rate:  # type: ignore[arg-type]
        return f"load generator fell behind at {rate}/s"
    return None


def _fmt_step(step: Result) -> str:
    return (
        f"sent {step['achieved']:.0f}/s  p50 {step['p50_ms']:.2f} ms  p99 {step['p99_ms']:.2f} ms"
        f"  lost {step['lost']}  server {step['cpu_us_per_msg']:.2f} µs/msg"
        f" ({step['server_cpu_pct']:.0f} % CPU)  loadgen {step['loadgen_cpu_pct']:.0f} % CPU"
    )


async def _paced_writes(
    clients: list[YClient],
    writers: list[ArrayWriter],
    counters: list[int],
    rate: int,
    duration_s: float,
) -> int:
    """Send ``rate`` updates/s in total, round robin over the writers, for ``duration_s``."""
    start = time.perf_counter()
    sent = 0
    turn = 0
    while (elapsed := time.perf_counter() - start) < duration_s:
        due = int(rate * elapsed) - sent
        if due > 0:
            batches: dict[int, list[bytes]] = {}
            now = time.perf_counter_ns()
            for _ in range(due):
                i = turn % len(clients)
                turn += 1
                batches.setdefault(i, []).append(writers[i].next_message(counters[i], now))
                counters[i] += 1
            for i, msgs in batches.items():
                clients[i].send_many(msgs)
            sent += due
        await asyncio.sleep(0.001)
    return sent
