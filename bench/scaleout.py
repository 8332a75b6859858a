"""Scale-out benchmark: 1, 2 and 4 ``opendpia serve`` processes on PostgreSQL and Redis.

    .venv/bin/python -m bench.scaleout                       # 1,000 documents, 2,000 clients
    .venv/bin/python -m bench.scaleout --processes 1,2 --docs 200 --clients 400 --seconds 8

Each document has ``clients / docs`` clients; its first client writes, the others read.
Client ``j`` of document ``d`` connects to process ``(d + j) % N``, so with two or more
processes every delivery crosses processes (through Redis); with one process (no Redis, the
baseline) none does. With ``--route-by-document`` every client of document ``d`` connects to
process ``d % N``, as a proxy that hashes the document's path would send them: no delivery
crosses processes, and each update is applied in one process only. Writers send ``--rate``
updates per second in total, spread evenly over the documents. Each configuration gets a
fresh PostgreSQL database and its own redis-server; the servers, Redis and the load
generator share this machine's cores.

Reported per configuration: delivered updates/s, delivery latency p50/p99/max (send to
arrival at the other client, one clock), missing deliveries, CPU % of each server process,
of Redis, of PostgreSQL, of the load generator, and CPU µs per delivered update: servers +
Redis + PostgreSQL, and the servers alone. PostgreSQL is the machine's system service,
shared with whatever else runs here: its cost counts the backends connected to this run's
own database (found in ``pg_stat_activity``, read with psutil), which do the parsing,
locking, inserting and the commit's WAL flush; its background processes (WAL writer,
checkpointer, background writer) serve every database on the server and are reported
apart, as an upper bound, and not added to the cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from bench.common import OwnCpu, new_writer, percentile
from bench.wsclient import Stats, YClient, connect

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-scale-out-secret-key-0123456789abcdef"
POSTGRES = os.environ.get("OPENDPIA_BENCH_POSTGRES", "127.0.0.1:5432")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Result:
    processes: int
    docs: int
    clients: int
    rate: float
    seconds: float
    sent: int
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    missing: int
    server_cpu_pct: list[float]
    redis_cpu_pct: float
    postgres_cpu_pct: float  # this run's backends
    postgres_shared_cpu_pct: float  # the server's background processes (all databases)
    loadgen_cpu_pct: float
    us_per_delivered: float  # servers + Redis + PostgreSQL's backends
    us_per_delivered_servers_redis: float
    us_per_delivered_servers_only: float
    commit_mean_ms: float
    commit_p99_ms: float  # upper bound of the histogram bucket holding the 99th percentile


async def _backend_pids(database: str) -> set[int]:
    import asyncpg

    connection = await asyncpg.connect(f"postgresql://postgres@{POSTGRES}/postgres", timeout=5)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await connection.close()
    return {int(row["pid"]) for row in rows}


def _cpu_seconds(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(times.user + times.system)


def _postgres_background() -> set[int]:
    """The PostgreSQL server's own processes that serve no one connection."""
    names = ("checkpointer", "background writer", "walwriter", "autovacuum launcher")
    pids = set()
    for proc in psutil.process_iter(["username", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or ())
        if proc.info["username"] == "postgres" and any(n in line for n in names):
            pids.add(proc.pid)
    return pids


class PostgresCpu:
    """CPU seconds of one database's backends, and of the server's background processes.

    Sampled at the start and the end of the window: a backend that appears meanwhile counts
    from zero (its start-up included), one that ends meanwhile is lost (the pools keep
    theirs open, so few do)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.start: dict[int, float] = {}
        self.background: dict[int, float] = {}

    async def begin(self) -> None:
        self.start = {}
        for pid in await _backend_pids(self.database):
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                self.start[pid] = seconds
        self.background = {
            pid: s for pid in _postgres_background() if (s := _cpu_seconds(pid)) is not None
        }

    async def end(self) -> tuple[float, float]:
        """(this database's backends, background processes) CPU seconds since ``begin``."""
        backends = 0.0
        for pid in await _backend_pids(self.database) | set(self.start):
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                backends += seconds - self.start.get(pid, 0.0)
        background = 0.0
        for pid, before in self.background.items():
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                background += seconds - before
        return backends, background


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(f"postgresql://postgres@{POSTGRES}/postgres", timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


class Deployment:
    """N server processes on one fresh database (and, for N > 1, one redis-server)."""

    def __init__(self, processes: int, commit_window_ms: float) -> None:
        self.count = processes
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-scaleout-{processes}-"))
        self.database = f"opendpia_bench_{uuid.uuid4().hex[:10]}"
        self.url = f"postgresql+asyncpg://postgres@{POSTGRES}/{self.database}"
        self.commit_window_ms = commit_window_ms
        self.redis: subprocess.Popen[bytes] | None = None
        self.redis_port = free_port()
        self.servers: list[tuple[subprocess.Popen[bytes], int]] = []

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "OPENDPIA_ENV": "test",
            "OPENDPIA_SECRET_KEY": SECRET,
            "OPENDPIA_DATABASE_URL": self.url,
            "OPENDPIA_LOG_LEVEL": "warning",
            "OPENDPIA_COMMIT_WINDOW_MS": str(self.commit_window_ms),
            "OPENDPIA_DB_POOL_SIZE": "5",
            "OPENDPIA_ROOM_GRACE_SECONDS": "60",
        }
        if self.count > 1:
            env["OPENDPIA_REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        return env

    async def start(self) -> None:
        await _admin(f'CREATE DATABASE "{self.database}"')
        await asyncio.to_thread(self._spawn)
        for proc, port in self.servers:
            await _wait_ready(proc, port)

    def _spawn(self) -> None:
        subprocess.run(
            [str(VENV_BIN / "opendpia"), "migrate"], env=self.env(), check=True, capture_output=True
        )
        if self.count > 1:
            self.redis = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for i in range(self.count):
            port = free_port()
            env = {**self.env(), "OPENDPIA_DEV_SMTP_PORT": str(free_port())}
            with (self.workdir / f"server{i}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [str(VENV_BIN / "opendpia"), "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self.servers.append((proc, port))

    def cpu(self) -> tuple[list[float], float]:
        servers = []
        for proc, _ in self.servers:
            ps = psutil.Process(proc.pid)
            times = ps.cpu_times()
            servers.append(times.user + times.system)
        redis = 0.0
        if self.redis is not None:
            times = psutil.Process(self.redis.pid).cpu_times()
            redis = times.user + times.system
        return servers, redis

    async def stop(self) -> None:
        for proc, _ in self.servers:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in self.servers:
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
        with contextlib.suppress(Exception):
            await _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        shutil.rmtree(self.workdir, ignore_errors=True)


async def _wait_ready(proc: subprocess.Popen[bytes], port: int, wait_s: float = 60) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("a server exited at start")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status = await reader.readline()
            writer.close()
            if b" 200 " in status:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("a server was not ready in time")


async def _commit_histogram(port: int) -> dict[str, float]:
    """The servers' ``opendpia_commit_seconds`` series, from /metrics."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    series = {}
    for line in body.splitlines():
        if line.startswith("opendpia_commit_seconds"):
            name, value = line.rsplit(" ", 1)
            series[name] = float(value)
    return series


async def _commits(deployment: Deployment) -> dict[str, float]:
    total: dict[str, float] = {}
    for _, port in deployment.servers:
        for name, value in (await _commit_histogram(port)).items():
            total[name] = total.get(name, 0.0) + value
    return total


def _commit_figures(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    count = delta.get("opendpia_commit_seconds_count", 0.0)
    if not count:
        return float("nan"), float("nan")
    mean = 1000 * delta["opendpia_commit_seconds_sum"] / count
    buckets = sorted(
        (float(k.split('le="')[1].split('"')[0]), v)
        for k, v in delta.items()
        if k.startswith("opendpia_commit_seconds_bucket")
    )
    p99 = next(
        (1000 * le for le, cumulative in buckets if cumulative >= 0.99 * count), float("inf")
    )
    return round(mean, 2), p99


def _path(doc: str) -> str:
    from server.domain.access import Role, TokenSigner

    token = TokenSigner(SECRET).issue(
        principal="bench", document_id=doc, role=Role.EDITOR, ttl_seconds=3600
    )
    return f"/ws/dpia/{quote(doc)}?token={quote(token)}"


async def run_one(args: argparse.Namespace, processes: int) -> Result:
    deployment = Deployment(processes, args.commit_window_ms)
    await deployment.start()
    per_doc = args.clients // args.docs
    docs = [f"so-{uuid.uuid4().hex[:8]}-{d}" for d in range(args.docs)]
    stats = Stats(recording=False)
    writers: list[YClient] = []
    readers: list[YClient] = []
    try:
        for start in range(0, args.docs, 25):
            batch = []
            for d in range(start, min(args.docs, start + 25)):
                for j in range(per_doc):
                    route = d if args.route_by_document else d + j
                    _, port = deployment.servers[route % processes]
                    number = d if j == 0 else -1  # a reader records every writer's marker
                    batch.append(connect(port, _path(docs[d]), writer_no=number, stats=stats))
            connected = await asyncio.gather(*batch)
            for k, client in enumerate(connected):
                (writers if k % per_doc == 0 else readers).append(client)
        writer_state = [new_writer(d) for d in range(args.docs)]
        counters = [0] * args.docs
        sent = 0
        stop = asyncio.Event()

        async def write() -> None:
            nonlocal sent
            began = time.perf_counter()
            index = 0
            while not stop.is_set():
                due = int((time.perf_counter() - began) * args.rate) - sent
                for _ in range(max(0, due)):
                    d = index % args.docs
                    index += 1
                    writers[d].send(
                        writer_state[d].next_message(counters[d], time.perf_counter_ns())
                    )
                    counters[d] += 1
                    sent += 1
                await asyncio.sleep(0.002)

        writing = asyncio.create_task(write())
        await asyncio.sleep(args.warmup)
        stats.recording = True
        own = OwnCpu()
        spies = _profile(deployment, args, processes)
        postgres = PostgresCpu(deployment.database)
        await postgres.begin()
        servers0, redis0 = deployment.cpu()
        commits0 = await _commits(deployment)
        sent0 = sent
        t0 = time.perf_counter()
        await asyncio.sleep(args.seconds)
        stats.recording = False
        elapsed = time.perf_counter() - t0
        servers1, redis1 = deployment.cpu()
        postgres_cpu, postgres_shared = await postgres.end()
        loadgen = own.percent()
        commit_mean, commit_p99 = _commit_figures(commits0, await _commits(deployment))
        measured_sent = sent - sent0
        for spy in spies:
            await asyncio.to_thread(spy.wait, 60)
        stop.set()
        await writing
        # Every update reaches every reader of its document (eventually).
        expected = sent * (per_doc - 1)
        deadline = time.monotonic() + 10
        while sum(r.seen for r in readers) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        missing = expected - sum(r.seen for r in readers)
        server_cpu = [b - a for a, b in zip(servers0, servers1, strict=True)]
        redis_cpu = redis1 - redis0
        delivered = max(1, stats.delivered)
        return Result(
            processes=processes,
            docs=args.docs,
            clients=len(writers) + len(readers),
            rate=args.rate,
            seconds=round(elapsed, 2),
            sent=measured_sent,
            delivered_per_s=round(stats.delivered / elapsed, 1),
            p50_ms=round(percentile(stats.latencies_ns, 50), 2),
            p99_ms=round(percentile(stats.latencies_ns, 99), 2),
            max_ms=round(percentile(stats.latencies_ns, 100), 2),
            missing=missing,
            server_cpu_pct=[round(100 * c / elapsed, 1) for c in server_cpu],
            redis_cpu_pct=round(100 * redis_cpu / elapsed, 1),
            postgres_cpu_pct=round(100 * postgres_cpu / elapsed, 1),
            postgres_shared_cpu_pct=round(100 * postgres_shared / elapsed, 1),
            loadgen_cpu_pct=round(loadgen, 1),
            us_per_delivered=round(
                1e6 * (sum(server_cpu) + redis_cpu + postgres_cpu) / delivered, 1
            ),
            us_per_delivered_servers_redis=round(
                1e6 * (sum(server_cpu) + redis_cpu) / delivered, 1
            ),
            us_per_delivered_servers_only=round(1e6 * sum(server_cpu) / delivered, 1),
            commit_mean_ms=commit_mean,
            commit_p99_ms=commit_p99,
        )
    finally:
        for client in writers + readers:
            client.abort()
        await deployment.stop()


def _profile(
    deployment: Deployment, args: argparse.Namespace, processes: int
) -> list[subprocess.Popen[bytes]]:
    """py-spy on every server for the measured window (``--py-spy DIR``): collapsed stacks,
    one file per server, which ``python -m bench.stacks`` sums by where the time goes."""
    if args.py_spy is None:
        return []
    args.py_spy.mkdir(parents=True, exist_ok=True)
    spies = []
    for i, (proc, _) in enumerate(deployment.servers):
        out = args.py_spy / f"p{processes}-server{i}.txt"
        spies.append(
            subprocess.Popen(
                [
                    str(VENV_BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--rate",
                    "100",
                    "--duration",
                    str(int(args.seconds)),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return spies


def _table(results: list[Result]) -> str:
    lines = [
        "| processes | docs | clients | delivered/s | p50 ms | p99 ms | max ms | missing "
        "| server CPU % (each) | Redis CPU % | PostgreSQL CPU % (backends; background) "
        "| loadgen CPU % | µs/delivered (servers+Redis+PostgreSQL) "
        "| µs/delivered (servers+Redis) | µs/delivered (servers) "
        "| commit mean ms | commit p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.processes} | {r.docs} | {r.clients} | {r.delivered_per_s:,.0f} | {r.p50_ms} "
            f"| {r.p99_ms} | {r.max_ms} | {r.missing} | "
            f"{' + '.join(str(c) for c in r.server_cpu_pct)} | {r.redis_cpu_pct} "
            f"| {r.postgres_cpu_pct}; {r.postgres_shared_cpu_pct} "
            f"| {r.loadgen_cpu_pct} | {r.us_per_delivered} | {r.us_per_delivered_servers_redis} "
            f"| {r.us_per_delivered_servers_only} "
            f"| {r.commit_mean_ms} | {r.commit_p99_ms} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=1000.0, help="updates/s in total")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--commit-window-ms", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--route-by-document",
        action="store_true",
        help="every client of a document connects to one process (the document's), as a "
        "proxy hashing the document's path would send them (docs/scale-out.md)",
    )
    parser.add_argument(
        "--py-spy", type=Path, help="record every server with py-spy into this directory"
    )
    args = parser.parse_args()
    if args.clients < 2 * args.docs:
        parser.error("--clients must be at least twice --docs (a writer and a reader each)")
    results = []
    for count in (int(n) for n in args.processes.split(",")):
        result = await run_one(args, count)
        print(json.dumps(asdict(result)), flush=True)
        results.append(result)
    print()
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    asyncio.run(main())
