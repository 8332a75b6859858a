"""The Redis bus alone, before and after decision 152, interleaved on one private Redis.

    .venv/bin/python -m bench.busbench                  # about 1 minute; needs redis-server
    .venv/bin/python -m bench.busbench --rate 1000 --docs 1000 --buses 4 --seconds 5

``--buses`` buses in this one process stand for that many server processes. Document ``d``
is followed by buses ``d % N`` and ``(d + 1) % N`` (as ``bench.scaleout`` places a
document's two clients) and published by the first, so every message is delivered once, in
another bus. Messages (``--bytes`` each, the size of a typed character's update) are
published ``--rate`` a second in total, in batches every 5 ms as group commits release
them. Each round runs one way for ``--seconds`` on a fresh Redis database; the ways take
turns, so the shared machine's load falls on both alike.

The "before" way is ``server/storage/redisbus.py`` as committed on ``--before`` (default:
``main``), read with ``git show``; "after" is this checkout's. Reported per way: delivered
per second, publish-to-deliver latency p50/p99, CPU per delivered message of this
process (every bus's client side: publishing, reading, parsing) and of Redis, and, from
Redis's own counters (which a loaded machine does not move), commands and bytes each way
per delivered message.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from bench.common import percentile
from bench.scaleout import free_port
from server.domain.bus import BusKind, BusMessage

ROOT = Path(__file__).resolve().parent.parent


class Counter:
    """A DocumentSubscriber that counts deliveries and their latency."""

    def __init__(self, latencies: list[int]) -> None:
        self.latencies = latencies
        self.delivered = 0
        self.catch_ups = 0

    def deliver(self, document_id: str, messages: Sequence[BusMessage]) -> None:
        now = time.perf_counter_ns()
        for message in messages:
            self.delivered += 1
            self.latencies.append(now - int(message.payload[:20]))

    def catch_up(self, document_id: str) -> None:
        self.catch_ups += 1

    def notice(self, user_ids: Iterable[int]) -> None:
        return None


def load_before(commit: str, directory: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:server/storage/redisbus.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    path = directory / "redisbus_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("redisbus_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def one_round(
    bus_class: Any, url: str, prefix: str, args: argparse.Namespace
) -> dict[str, float]:
    latencies: list[int] = []
    counters = [Counter(latencies) for _ in range(args.buses)]
    buses = [bus_class(url, prefix=prefix) for _ in range(args.buses)]
    tasks = []
    for bus, counter in zip(buses, counters, strict=True):
        started = asyncio.Event()
        tasks.append(asyncio.create_task(bus.run(started, counter, counter.notice)))
        await asyncio.wait_for(started.wait(), 30)
    documents = [f"bb-{prefix}-{d}" for d in range(args.docs)]
    for d, document_id in enumerate(documents):
        await buses[d % args.buses].follow(document_id)
        await buses[(d + 1) % args.buses].follow(document_id)
    padding = b"x" * max(0, args.bytes - 20)
    sent = 0

    async def publish(seconds: float) -> None:
        nonlocal sent
        began, sent_before = time.perf_counter(), sent
        while (elapsed := time.perf_counter() - began) < seconds:
            due = int(elapsed * args.rate) - (sent - sent_before)
            for _ in range(max(0, due)):
                d = sent % args.docs
                stamp = b"%020d" % time.perf_counter_ns()
                buses[d % args.buses].publish(documents[d], BusKind.UPDATE, stamp + padding)
                sent += 1
            await asyncio.sleep(0.005)

    await publish(1.0)  # warm up
    latencies.clear()
    delivered0 = sum(c.delivered for c in counters)
    process = psutil.Process()
    cpu0 = sum(process.cpu_times()[:2])
    redis_cpu0 = args.redis_cpu()
    stats0 = await redis_stats(url)
    t0 = time.perf_counter()
    await publish(args.seconds)
    elapsed = time.perf_counter() - t0
    cpu = sum(process.cpu_times()[:2]) - cpu0
    redis_cpu = args.redis_cpu() - redis_cpu0
    stats = await redis_stats(url)
    delivered = sum(c.delivered for c in counters) - delivered0
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for bus in buses:
        await bus.close()
    return {
        "delivered_per_s": delivered / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "client_us": 1e6 * cpu / max(1, delivered),
        "redis_us": 1e6 * redis_cpu / max(1, delivered),
        "catch_ups": float(sum(c.catch_ups for c in counters)),
        # What does not depend on the machine's load: Redis's own counters.
        "commands_per_msg": (stats[0] - stats0[0]) / max(1, delivered),
        "bytes_in_per_msg": (stats[1] - stats0[1]) / max(1, delivered),
        "bytes_out_per_msg": (stats[2] - stats0[2]) / max(1, delivered),
    }


async def redis_stats(url: str) -> tuple[int, int, int]:
    """Redis's commands processed, bytes received and bytes sent so far."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        info: dict[str, Any] = await client.info("stats")
    finally:
        await client.aclose()
    return (
        int(info["total_commands_processed"]),
        int(info["total_net_input_bytes"]),
        int(info["total_net_output_bytes"]),
    )


async def main() -> None:
    from server.storage import redisbus

    parser = argparse.ArgumentParser(prog="python -m bench.busbench", description=__doc__)
    parser.add_argument("--buses", type=int, default=4)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s in total")
    parser.add_argument("--bytes", type=int, default=40, help="payload size")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="main")
    parser.add_argument(
        "--shards",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[redisbus.SHARDS],
        help="the after way with each of these shard counts (comma-separated)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-busbench-") as directory:
        before = load_before(args.before, Path(directory))
        port = free_port()
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        server = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything is measured)
            [*command, "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        redis_process = psutil.Process(server.pid)
        args.redis_cpu = lambda: sum(redis_process.cpu_times()[:2])
        url = f"redis://127.0.0.1:{port}/0"
        try:
            await asyncio.sleep(0.5)
            ways: dict[str, Any] = {f"before ({args.before})": before.RedisBus}
            for shards in args.shards:
                ways[f"after, {shards} shards"] = functools.partial(
                    redisbus.RedisBus, shards=shards
                )
            results: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
            for round_no in range(args.rounds):
                for n, (name, bus_class) in enumerate(ways.items()):
                    result = await one_round(bus_class, url, f"r{round_no}w{n}", args)
                    results[name].append(result)
                    print(f"round {round_no} {name}: {result}", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait(10)
    print(
        f"{args.buses} buses, {args.docs} documents (2 followers each), {args.rate:g} msg/s, "
        f"{args.bytes} B, {args.rounds} rounds of {args.seconds:g} s per way; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "| way | delivered/s | p50 ms | p99 ms | client µs/msg | Redis µs/msg | total µs/msg "
        "| Redis commands/msg | bytes to Redis/msg | bytes from Redis/msg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rounds in results.items():

        def median(key: str, rounds: list[dict[str, float]] = rounds) -> float:
            values = sorted(r[key] for r in rounds)
            return values[len(values) // 2]

        total = sorted(r["client_us"] + r["redis_us"] for r in rounds)[len(rounds) // 2]
        print(
            f"| {name} | {median('delivered_per_s'):,.0f} | {median('p50_ms'):.2f} "
            f"| {median('p99_ms'):.2f} | {median('client_us'):.1f} | {median('redis_us'):.1f} "
            f"| {total:.1f} | {median('commands_per_msg'):.2f} | {median('bytes_in_per_msg'):,.0f} "
            f"| {median('bytes_out_per_msg'):,.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
