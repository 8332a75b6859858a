"""Burst and durable writes, cold load after a restart, and memory per document."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from contextlib import closing

from bench.common import (
    Result,
    Sizes,
    close_all,
    connect_many,
    doc_name,
    new_writer,
    prebuilt_frames,
    send_frames,
)
from bench.servers import PYCRDT_SQLITE, Server
from bench.wsclient import YClient, connect
from bench.yproto import MARKER

MS = 1e6  # ns per ms


def _stored_rows(server: Server, doc: str) -> int:
    """Updates pycrdt-store has committed for ``doc`` (read beside the running server)."""
    query = "SELECT count(*) FROM yupdates WHERE path = ?"
    try:
        uri = f"file:{server.store_path}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
            row = db.execute(query, ("/" + doc,)).fetchone()
    except sqlite3.Error:
        return -1
    return int(row[0])


async def _wait_stored(server: Server, doc: str, n: int, wait_s: float) -> int:
    """Poll the store until it holds ``n`` updates of ``doc``; return the time (ns) or 0."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if _stored_rows(server, doc) >= n:
            return time.perf_counter_ns()
        await asyncio.sleep(0.02)
    return 0


async def _fill(server: Server, doc: str, n: int, wait_s: float) -> YClient:
    """Write ``n`` updates into ``doc`` and wait until the server has persisted them."""
    writer = await connect(server.port, server.path(doc, saved=True), writer_no=0)
    await send_frames(writer, prebuilt_frames(new_writer(0), n))
    if server.spec.acks:
        writer.saved_target = writer.writes_sent
        if writer.saved < writer.saved_target:
            await asyncio.wait_for(writer.saved_done.wait(), wait_s)
    elif server.spec is PYCRDT_SQLITE and not await _wait_stored(server, doc, n, wait_s):
        raise RuntimeError(f"pycrdt-store held {_stored_rows(server, doc)} of {n} after {wait_s}s")
    return writer


async def burst(server: Server, sizes: Sizes) -> Result:
    """One client sends N updates as fast as it can; a second one watches them arrive."""
    await server.restart()
    n, doc = sizes.burst_updates, doc_name("burst")
    reader = await connect(server.port, server.path(doc), writer_no=-1)
    writer = await connect(server.port, server.path(doc, saved=True), writer_no=0)
    frames = prebuilt_frames(new_writer(0), n)
    reader.seen_target = n
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter_ns()
    await send_frames(writer, frames)
    t_sent = time.perf_counter_ns()
    writer.saved_target = writer.writes_sent
    result: Result = {"updates": n, "send_ms": (t_sent - t0) / MS}
    try:
        await asyncio.wait_for(reader.seen_done.wait(), 120)
        result["all_seen_ms"] = (reader.seen_done_ns - t0) / MS
    except TimeoutError:
        result["all_seen_ms"] = None
        result["seen"] = reader.seen
    if server.spec.acks:
        try:
            await asyncio.wait_for(writer.saved_done.wait(), 120)
            result["all_saved_ms"] = (writer.saved_done_ns - t0) / MS
            result["saved_after_last_send_ms"] = (writer.saved_done_ns - t_sent) / MS
        except TimeoutError:
            result["all_saved_ms"] = None
    if server.spec is PYCRDT_SQLITE:
        stored_ns = await _wait_stored(server, doc, n, 30 + n / 300)
        result["all_stored_ms"] = (stored_ns - t0) / MS if stored_ns else None
    result["server_cpu_s"] = server.cpu_seconds() - cpu0
    await close_all([reader, writer])
    if server.spec.persistent:
        result["survived_leave_early"] = await _leave_early(server, n)
    return result


async def _leave_early(server: Server, n: int) -> int:
    """Send N updates, leave at once, restart the server: how many updates did it keep?"""
    doc = doc_name("leave")
    writer = await connect(server.port, server.path(doc), writer_no=0)
    await send_frames(writer, prebuilt_frames(new_writer(0), n))
    await writer.close()
    await asyncio.sleep(2.0)
    await server.restart()
    fresh = await connect(server.port, server.path(doc))
    kept = len(MARKER.findall(fresh.step2_payload))
    await fresh.close()
    return kept


async def cold_load(server: Server, sizes: Sizes) -> Result:
    """After a restart: connect + full sync of an N-update document, for each size N."""
    await server.restart()
    result: Result = {}
    limit = sizes.cold_store_max if server.spec is PYCRDT_SQLITE else max(sizes.cold_sizes)
    for n in sizes.cold_sizes:
        if n > limit:
            result[str(n)] = {"skipped": f"filling takes minutes (> {limit} updates)"}
            continue
        doc = doc_name(f"cold{n}")
        t_fill = time.perf_counter()
        writer = await _fill(server, doc, n, 60 + n / 200)
        fill_s = time.perf_counter() - t_fill
        await writer.close()
        times, complete = [], True
        size = 0
        for _ in range(sizes.cold_repeats):
            await server.restart()
            path = server.path(doc)
            t0 = time.perf_counter_ns()
            client = await connect(server.port, path, wait_s=60)
            times.append((client.synced_at_ns - t0) / MS)
            size = len(client.step2_payload)
            complete &= len(MARKER.findall(client.step2_payload)) == n
            await client.close()
        result[str(n)] = {
            "median_ms": statistics.median(times),
            "max_ms": max(times),
            "runs": len(times),
            "complete": complete,
            "state_bytes": size,
            "fill_s": fill_s,
        }
    return result


async def memory(server: Server, sizes: Sizes) -> Result:
    """RSS per loaded document, then RSS growth over many open/close cycles."""
    await server.restart()
    await asyncio.sleep(0.5)
    docs = [doc_name("mem") for _ in range(sizes.mem_docs)]
    base = server.rss_bytes()
    clients = await connect_many(server, docs, saved=True)
    for i, client in enumerate(clients):
        client.send(new_writer(i).next_message(0, 0))
    await asyncio.sleep(1.0)
    loaded = server.rss_bytes()
    await close_all(clients)
    await asyncio.sleep(2.0)
    after_close = server.rss_bytes()
    sem = asyncio.Semaphore(20)

    async def cycle(i: int) -> None:
        async with sem:
            client = await connect(server.port, server.path(docs[i % len(docs)]))
            await client.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(cycle(i) for i in range(sizes.mem_cycles)))
    cycles_s = time.perf_counter() - t0
    await asyncio.sleep(2.0)
    end = server.rss_bytes()
    return {
        "docs": len(docs),
        "base_mb": base / 2**20,
        "kb_per_doc_connected": (loaded - base) / len(docs) / 1024,
        "kb_per_doc_after_close": (after_close - base) / len(docs) / 1024,
        "cycles": sizes.mem_cycles,
        "cycles_per_s": sizes.mem_cycles / cycles_s,
        "rss_growth_pct": 100 * (end - after_close) / after_close,
    }
