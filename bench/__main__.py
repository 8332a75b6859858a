"""Run the benchmark: ``python -m bench [--quick] [--only fanout,burst] [--servers ...]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import bigjoin, durable, live, presence, report, stock, wsclient
from bench.common import Result, Sizes
from bench.servers import (
    OPENDPIA,
    PYCRDT,
    PYCRDT_SQLITE,
    WIRE,
    YWS,
    Server,
    Spec,
    opendpia_available,
)

Scenario = Callable[[Server, Sizes], Awaitable[Result]]
SCENARIOS: dict[str, tuple[Scenario, list[Spec]]] = {
    "fanout": (live.fanout, [OPENDPIA, PYCRDT, YWS]),
    "saturation": (live.saturation, [OPENDPIA, PYCRDT, YWS]),
    "presence": (presence.presence, [OPENDPIA, PYCRDT, YWS]),
    "burst": (durable.burst, [OPENDPIA, PYCRDT, PYCRDT_SQLITE, YWS]),
    "cold": (durable.cold_load, [OPENDPIA, PYCRDT_SQLITE]),
    "memory": (durable.memory, [OPENDPIA, PYCRDT, YWS]),
    "stock-setup": (stock.stock_setup, [OPENDPIA, PYCRDT, YWS]),
    "stock-cold": (stock.stock_cold, [OPENDPIA, PYCRDT_SQLITE, YWS]),
    "bigjoin": (bigjoin.bigjoin, [WIRE, OPENDPIA, PYCRDT, PYCRDT_SQLITE, YWS]),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of ~2 min")
    p.add_argument("--only", help=f"comma-separated scenarios from {','.join(SCENARIOS)}")
    p.add_argument("--servers", help="comma-separated: opendpia,pycrdt-websocket,...")
    p.add_argument("--json", type=Path, help="also write all results to this file")
    p.add_argument("--keep", action="store_true", help="keep the servers' working directories")
    p.add_argument("--fanout-seconds", type=float)
    p.add_argument("--fanout-clients", type=int)
    p.add_argument("--presence-clients", type=int)
    p.add_argument("--presence-seconds", type=float, help="measured in each of the two phases")
    p.add_argument("--presence-rate", type=float, help="caret moves/s per client")
    p.add_argument("--sat-step-seconds", type=float)
    p.add_argument("--burst-updates", type=int)
    p.add_argument("--cold-sizes", help="comma-separated update counts, e.g. 20000,100000")
    p.add_argument("--cold-repeats", type=int)
    p.add_argument("--mem-docs", type=int)
    p.add_argument("--mem-cycles", type=int)
    p.add_argument("--stock-providers", type=int)
    p.add_argument("--stock-rounds", type=int)
    p.add_argument("--bigjoin-mb", type=float, help="size of bigjoin's document (MB)")
    p.add_argument("--bigjoin-clients", type=int, help="clients joining it at once")
    p.add_argument(
        "--deflate",
        action="store_true",
        help="clients offer permessage-deflate as browsers do; OpenDPIA is started with "
        "OPENDPIA_WS_DEFLATE=true to accept it",
    )
    return p.parse_args()


def sizes_from(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    overrides = {
        "fanout_s": args.fanout_seconds,
        "fanout_clients": args.fanout_clients,
        "presence_clients": args.presence_clients,
        "presence_s": args.presence_seconds,
        "presence_rate": args.presence_rate,
        "sat_step_s": args.sat_step_seconds,
        "burst_updates": args.burst_updates,
        "cold_repeats": args.cold_repeats,
        "mem_docs": args.mem_docs,
        "mem_cycles": args.mem_cycles,
        "stock_providers": args.stock_providers,
        "stock_rounds": args.stock_rounds,
        "bigjoin_mb": args.bigjoin_mb,
        "bigjoin_clients": args.bigjoin_clients,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(sizes, key, value)
    if args.cold_sizes:
        sizes.cold_sizes = [int(n) for n in args.cold_sizes.split(",")]
    return sizes


async def run_one(spec: Spec, scenario: Scenario, sizes: Sizes, keep: bool) -> Result:
    server = Server(spec)
    try:
        await server.start()
        return await scenario(server, sizes)
    except Exception as error:  # one failing server must not end the run
        return {"error": f"{type(error).__name__}: {error} (log: {server.workdir}/server.log)"}
    finally:
        await server.stop()
        server.cleanup(keep or False)


async def main() -> None:
    args = parse_args()
    sizes = sizes_from(args)
    if args.deflate:
        wsclient.OFFER_DEFLATE = True
        os.environ["OPENDPIA_WS_DEFLATE"] = "true"  # the servers inherit this environment
    # bigjoin moves gigabytes through loopback: run it on its own (--only bigjoin).
    chosen = args.only.split(",") if args.only else [s for s in SCENARIOS if s != "bigjoin"]
    wanted = set(args.servers.split(",")) if args.servers else None
    results: dict[str, dict[str, Any]] = {}
    started = time.time()
    print(f"bench: {platform.node()} {platform.python_version()} sizes={sizes}", flush=True)
    for name in chosen:
        scenario, specs = SCENARIOS[name]
        results[name] = {}
        for spec in specs:
            if wanted is not None and spec.name not in wanted:
                continue
            if spec is OPENDPIA and not opendpia_available():
                results[name][spec.name] = {"skipped": "OpenDPIA server not installed yet"}
                continue
            print(f"== {name} / {spec.name}", flush=True)
            t0 = time.perf_counter()
            result = await run_one(spec, scenario, sizes, args.keep)
            results[name][spec.name] = result
            shown = {k: v for k, v in result.items() if k != "steps"}
            print(f"   {shown}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\nResults ({time.strftime('%Y-%m-%d %H:%M')}, {time.time() - started:.0f} s):")
    for name, per_server in results.items():
        print(f"\n[{name}]\n{report.table(name, per_server)}")
    if args.json:
        args.json.write_text(json.dumps({"sizes": vars(sizes), "results": results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
