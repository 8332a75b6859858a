"""What a person waits for, measured with the stock y-websocket provider (``bench/node/client.js``).

The other scenarios use the hand-rolled Python client (``bench/wsclient.py``), which counts
the bytes of sync step 2 and decodes nothing. Here each client is an npm ``WebsocketProvider``
with a Yjs document in Node, as in a browser: it sends sync step 1 and its awareness on open,
answers the server's step 1, and applies the server's step 2 to its document before it emits
``synced``. Times run from ``new WebsocketProvider(...)`` to that first ``synced`` event.

- ``stock_setup``: a document of ``stock_fill`` updates is held open by one hand-rolled
  client; then ``stock_providers`` providers are created at once, ``stock_rounds`` times.
- ``stock_cold``: for each size of ``cold_sizes``, one provider connects and syncs the whole
  document: after a restart (persistent servers), and while the document is loaded (every
  server; the only case for the in-memory servers, which lose it on restart).

For OpenDPIA the server's own share of a first sync (upgrade request to sync step 2 handed
to the socket) is read from its ``opendpia_first_sync_seconds`` histogram: after a restart
one connection is the only observation, so its sum is that connection's figure.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from bench.common import Result, Sizes, doc_name, percentile
from bench.durable import _fill
from bench.servers import BENCH, OPENDPIA, Server
from bench.wsclient import YClient, connect
from bench.yproto import MARKER

SHARE = "opendpia_first_sync_seconds"


async def run_providers(
    server: Server, doc: str, providers: int, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Run ``bench/node/client.js`` against ``doc``; its JSON result."""
    url, room, params = server.provider_address(doc)
    command = ["node", str(BENCH / "node" / "client.js"), "--server", url, "--room", room]
    command += ["--providers", str(providers), "--timeout-ms", str(int(timeout_s * 1000))]
    for key, value in params.items():
        command += ["--param", f"{key}={value}"]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s + 30)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"client.js failed ({proc.returncode}): {err.decode()[-800:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _share(server: Server) -> tuple[float, float]:
    """OpenDPIA's first-sync histogram so far: (count, sum in seconds)."""
    samples = await server.metrics()
    return samples.get(f"{SHARE}_count", 0.0), samples.get(f"{SHARE}_sum", 0.0)


def _ns(values_ms: list[float | None]) -> list[int]:
    return [int(v * 1e6) for v in values_ms if v is not None]


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


async def _hold(server: Server, doc: str, n: int) -> YClient:
    """Write ``n`` updates into ``doc`` with a hand-rolled client that stays connected."""
    if n == 0:
        return await connect(server.port, server.path(doc))
    holder = await _fill(server, doc, n, 60 + n / 200)
    # A server without acknowledgements may still be applying what was sent: wait until a
    # fresh client is given all of it.
    deadline = time.monotonic() + 60 + n / 200
    while True:
        check = await connect(server.port, server.path(doc), wait_s=60)
        held = len(MARKER.findall(check.step2_payload))
        await check.close()
        if held >= n:
            return holder
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.spec.name} held {held} of {n} updates")
        await asyncio.sleep(0.2)


async def stock_setup(server: Server, sizes: Sizes) -> Result:
    """``stock_providers`` stock providers created at once on one open document."""
    await server.restart()
    doc = doc_name("stock-setup")
    holder = await _hold(server, doc, sizes.stock_fill)
    setup, answer, decode, rounds = [], [], [], []
    share0 = await _share(server) if server.spec is OPENDPIA else None
    synced = 0
    for _ in range(sizes.stock_rounds):
        got = await run_providers(server, doc, sizes.stock_providers)
        synced += got["synced"]
        setup += _ns(got["setup_ms"])
        answer += _ns(got["answer_ms"])
        decode += _ns(got["decode_ms"])
        rounds.append(percentile(_ns(got["setup_ms"]), 95))
    await holder.close()
    result: Result = {
        "providers": sizes.stock_providers * sizes.stock_rounds,
        "synced": synced,
        "p50_ms": percentile(setup, 50),
        "p95_ms": percentile(setup, 95),
        "max_ms": percentile(setup, 100),
        "p95_per_round_ms": rounds,
        "answer_p50_ms": percentile(answer, 50),
        "decode_p50_ms": percentile(decode, 50),
    }
    if share0 is not None:
        count, total = await _share(server)
        result["server_share_mean_ms"] = 1000 * (total - share0[1]) / max(1, count - share0[0])
    return result


async def stock_cold(server: Server, sizes: Sizes) -> Result:
    """One stock provider's connect + full sync of a large document, loaded and cold."""
    await server.restart()
    result: Result = {}
    limit = sizes.cold_store_max if not server.spec.acks else max(sizes.cold_sizes)
    for n in sizes.cold_sizes:
        if server.spec.persistent and n > limit:
            result[str(n)] = {"skipped": f"filling takes minutes (> {limit} updates)"}
            continue
        doc = doc_name(f"stock-cold{n}")
        t_fill = time.perf_counter()
        holder = await _hold(server, doc, n)
        entry: dict[str, Any] = {"fill_s": time.perf_counter() - t_fill}
        entry["warm"] = await _runs(server, doc, n, sizes.cold_repeats, restart=False)
        await holder.close()
        if server.spec.persistent:
            entry["cold"] = await _runs(server, doc, n, sizes.cold_repeats, restart=True)
        result[str(n)] = entry
    return result


async def _runs(server: Server, doc: str, n: int, repeats: int, *, restart: bool) -> Result:
    setup, opened, answer, decode, share = [], [], [], [], []
    complete, size = True, 0
    for _ in range(repeats):
        if restart:
            await server.restart()
        before = await _share(server) if server.spec is OPENDPIA else None
        got = await run_providers(server, doc, 1)
        setup.append(got["setup_ms"][0])
        opened.append(got["open_ms"][0])
        answer.append(got["answer_ms"][0])
        decode.append(got["decode_ms"][0])
        size = got["step2_bytes"]
        complete &= got["synced"] == 1 and got["items"] == n
        if before is not None:
            count, total = await _share(server)
            share.append(1000 * (total - before[1]) if count - before[0] == 1 else None)
    runs: Result = {
        "median_ms": _median(setup),
        "max_ms": max((v for v in setup if v is not None), default=None),
        "open_ms": _median(opened),
        "answer_ms": _median(answer),
        "decode_ms": _median(decode),
        "runs": repeats,
        "complete": complete,
        "step2_bytes": size,
    }
    if share:
        runs["server_share_ms"] = _median(share)
        runs["server_share_max_ms"] = max((v for v in share if v is not None), default=None)
    return runs
