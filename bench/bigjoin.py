"""Joining a large document (issue 18, target 4): many clients join a 20 MB DPIA at once.

The document is ``bench.bigdoc``'s: rich text and tables written as the editor writes them,
about ``bigjoin_mb`` MB of encoded state in about 1,900 updates. It is sent to each server
through its WebSocket, as editors would have sent it, and persisted the server's own way
(OpenDPIA: the update log, compacted into a snapshot every 500 rows, so a load reads a
snapshot and a tail; pycrdt-websocket+sqlite: one row per update). Then:

- ``cold`` (persistent servers): the server is restarted, and ``bigjoin_clients`` clients
  connect at once to the document nobody has open: the first of them loads it.
- ``warm`` (every server): one client holds the document open, and as many again connect.

Each client sends sync step 1 with an empty state vector, as a fresh page does. Its join
time runs from the start of its TCP connect to the last byte of the server's sync step 2.
``wire`` (``bench/peers/wire_server.py``) is the floor, not a server: it answers every
upgrade with the same pre-framed bytes and does nothing else, so its join times are what
the loopback and these clients cost on this machine at this moment.

A client is *synced* when that step 2 is byte-identical (length and CRC-32) to the first
client's, and the first client's is decoded with pycrdt and checked field by field against
the document that was sent.

The clients are not the hand-rolled ``YClient`` (it keeps each payload: 150 times 20 MB) nor
stock npm providers (each would hold a decoded 20 MB Yjs document: several GB for 150 in
one Node process): ``JoinClient`` below reads every socket into one shared 1 MiB buffer and
keeps only a running CRC of the step 2 it streams through (the first client keeps its bytes
for the content check).

Reported: synced clients, join p50/p95/p99/max, time to the first byte of step 2 p50,
server RSS before, at its peak (the kernel's high-water mark, ``VmHWM``, since the restart:
for a cold join it includes the load) and after, server CPU seconds, load generator CPU.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

from bench import bigdoc
from bench.common import OwnCpu, Result, Sizes, doc_name, percentile
from bench.durable import _wait_stored
from bench.servers import OPENDPIA, PYCRDT_SQLITE, WIRE, Server
from bench.wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    YClient,
    connect,
    frame,
)

MS = 1e6
_SHARED = memoryview(bytearray(1 << 20))  # every client reads into this (one loop thread)
_STEP1_EMPTY = b"\x00\x00\x01\x00"  # sync step 1, empty state vector
_STEP2_EMPTY = b"\x00\x01\x02\x00\x00"


class JoinClient(asyncio.BufferedProtocol):
    """A y-websocket client that streams the server's frames without keeping them."""

    def __init__(self, keep: bool) -> None:
        self.transport: asyncio.Transport | None = None
        self.t_start = time.perf_counter_ns()
        self.t_open = 0
        self.t_first = 0  # first byte of sync step 2
        self.t_done = 0  # last byte of it
        self.step2_len = 0
        self.step2_crc = 0
        self.kept = bytearray() if keep else None
        self.done = asyncio.get_running_loop().create_future()
        self._keep = keep
        self._open = False
        self._head = bytearray()  # HTTP response, then each frame header
        self._need = 0  # payload bytes left in the current frame
        self._opcode = 0
        self._fin = False
        self._control = bytearray()
        self._msg_prefix = bytearray()  # first two bytes of the message being received
        self._msg_len = 0
        self._msg_crc = 0
        self._msg_keep: bytearray | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SHARED

    def buffer_updated(self, nbytes: int) -> None:
        data = _SHARED[:nbytes]
        pos = 0
        if not self._open:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self._head[: self._head.find(b"\r\n")]:
                if not self.done.done():
                    self.done.set_exception(ConnectionError(bytes(self._head[:80]).decode()))
                return
            rest = bytes(self._head[end + 4 :])
            self._head.clear()
            self._open = True
            self.t_open = time.perf_counter_ns()
            self._write(frame(_STEP1_EMPTY))
            data, pos = memoryview(rest), 0
        size = len(data)
        while pos < size:
            if self._need == 0:  # a header (a zero-length frame ends inside it)
                pos = self._read_head(data, pos)
                continue
            take = min(self._need, size - pos)
            self._payload(data[pos : pos + take])
            pos += take
            self._need -= take
            if self._need == 0:
                self._frame_end()

    # -- frames -------------------------------------------------------------------------
    def _read_head(self, data: memoryview, pos: int) -> int:
        head = self._head
        while pos < len(data):
            head.append(data[pos])
            pos += 1
            if len(head) < 2:
                continue
            n = head[1] & 0x7F
            need = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if len(head) < need:
                continue
            if n == 126:
                n = struct.unpack_from("!H", head, 2)[0]
            elif n == 127:
                n = struct.unpack_from("!Q", head, 2)[0]
            self._opcode = head[0] & 0x0F
            self._fin = bool(head[0] & 0x80)
            head.clear()
            self._need = n
            if self._opcode == OP_BINARY:
                self._msg_prefix.clear()
                self._msg_len, self._msg_crc = 0, 0
                self._msg_keep = bytearray() if self._keep else None
            if n == 0:
                self._frame_end()
            return pos
        return pos

    def _payload(self, chunk: memoryview) -> None:
        if self._opcode >= 8:
            self._control += chunk
            return
        if len(self._msg_prefix) < 2:
            self._msg_prefix += chunk[: 2 - len(self._msg_prefix)]
            if self._msg_prefix == b"\x00\x01" and not self.t_first:
                self.t_first = time.perf_counter_ns()
        self._msg_len += len(chunk)
        self._msg_crc = zlib.crc32(chunk, self._msg_crc)
        if self._msg_keep is not None and self._msg_prefix[:2] == b"\x00\x01":
            self._msg_keep += chunk

    def _frame_end(self) -> None:
        opcode = self._opcode
        if opcode >= 8:
            payload, self._control = bytes(self._control), bytearray()
            if opcode == OP_PING:
                self._write(frame(payload, OP_PONG))
            elif opcode == OP_CLOSE and self.transport is not None:
                self.transport.close()
            return
        if opcode not in (OP_BINARY, OP_CONT) or not self._fin:
            return
        prefix = bytes(self._msg_prefix)
        if prefix == b"\x00\x00":  # the server's step 1: we hold nothing to give
            self._write(frame(_STEP2_EMPTY))
        elif prefix == b"\x00\x01" and not self.t_done:
            self.t_done = time.perf_counter_ns()
            self.step2_len, self.step2_crc = self._msg_len, self._msg_crc
            if self._msg_keep is not None:
                self.kept = self._msg_keep
            if not self.done.done():
                self.done.set_result(None)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def join_one(port: int, path: str, keep: bool, wait_s: float) -> JoinClient:
    loop = asyncio.get_running_loop()
    client = JoinClient(keep)
    await loop.create_connection(lambda: client, "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(asyncio.shield(client.done), wait_s)
    return client


async def _quiet(server: Server, at_least_s: float, idle_s: float = 1.5) -> None:
    """Wait ``at_least_s``, then until the server used under 2 % of a core for ``idle_s``."""
    await asyncio.sleep(at_least_s)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        await asyncio.sleep(idle_s)
        if server.cpu_seconds() - before < 0.02 * idle_s:
            return


def _vm_hwm(server: Server) -> int:
    """The serving process's peak RSS since it started (bytes), from /proc."""
    assert server._ps is not None
    for line in Path(f"/proc/{server._ps.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def _fill(server: Server, doc: str, updates: list[bytes], wait_s: float) -> YClient:
    """Send the document's updates as one editor's client would, and wait until the server
    has stored them (persistent servers); the writer, still connected."""
    writer = await connect(server.port, server.path(doc, saved=True), writer_no=0, wait_s=60)
    messages = [b"\x00\x02" + _varbytes(u) for u in updates]
    for start in range(0, len(messages), 50):
        writer.send_many(messages[start : start + 50])
        await writer.drain()
    if server.spec.acks:
        writer.saved_target = writer.writes_sent
        if writer.saved < writer.saved_target:
            await asyncio.wait_for(writer.saved_done.wait(), wait_s)
    elif server.spec is PYCRDT_SQLITE and not await _wait_stored(server, doc, len(updates), wait_s):
        raise RuntimeError("pycrdt-store did not store every update")
    return writer


def _varbytes(data: bytes) -> bytes:
    n, out = len(data), bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out) + data


async def _new_dpia(server: Server) -> str:
    """An empty uk-dpia DPIA in the server's database (before the server starts)."""
    import subprocess

    from argon2 import PasswordHasher
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from server.services.accounts import AccountService, CurrentUser
    from server.services.dpias import DpiaService
    from server.storage.database import create_engine
    from server.storage.updates import SqlUpdateStore

    env = server._env()
    opendpia = str(Path(server._command()[0]))
    await asyncio.to_thread(
        subprocess.run, [opendpia, "migrate"], env=env, check=True, capture_output=True
    )
    engine = create_engine(env["OPENDPIA_DATABASE_URL"])
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        accounts = AccountService(sessions, hasher)
        org = await accounts.create_organisation("BEN", "Bench Borough")
        owner_id = await accounts.create_user("owner@bench.example", "Owner", "x" * 12, "BEN")
        owner = CurrentUser(owner_id, "owner@bench.example", "Owner", (org,))
        return await DpiaService(sessions, SqlUpdateStore(engine)).create(
            owner, "Bench DPIA (large)", org
        )
    finally:
        await engine.dispose()


async def _join(server: Server, doc: str, clients: int, expected: dict[str, str]) -> Result:
    """``clients`` clients join ``doc`` at once; the figures."""
    rss_before = server.rss_bytes(serving_only=True)
    peak_sampled = rss_before
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak_sampled
        while not stop.is_set():
            peak_sampled = max(peak_sampled, server.rss_bytes(serving_only=True))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    own = OwnCpu()
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    wait_s = 300.0
    joined = await asyncio.gather(
        *(join_one(server.port, server.path(doc), i == 0, wait_s) for i in range(clients))
    )
    wall = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    rss_after = server.rss_bytes(serving_only=True)
    stop.set()
    await sampler
    loadgen = own.percent()
    first = joined[0]
    ok_content = False
    if first.kept:
        ok_content = await asyncio.to_thread(_check_content, bytes(first.kept), expected)
    synced = [
        c
        for c in joined
        if c.t_done
        and ok_content
        and (c.step2_len, c.step2_crc) == (first.step2_len, first.step2_crc)
    ]
    answered = [c for c in joined if c.t_done]
    times = [c.t_done - c.t_start for c in synced]
    firsts = [c.t_first - c.t_start for c in synced]
    opens = [c.t_open - c.t_start for c in synced]
    for c in joined:
        c.close()
    await asyncio.sleep(1.0)
    return {
        "clients": clients,
        "synced": len(synced),
        "answered": len(answered),  # got a whole sync step 2, the same as the first or not
        "distinct_answers": len({(c.step2_len, c.step2_crc) for c in answered}),
        "content_ok": ok_content,
        "step2_mb": first.step2_len / 1e6,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "p99_ms": percentile(times, 99),
        "max_ms": percentile(times, 100),
        "open_p50_ms": percentile(opens, 50),
        "first_byte_p50_ms": percentile(firsts, 50),
        "wall_s": wall,
        "server_cpu_s": cpu,
        "rss_before_mb": rss_before / 1e6,
        "rss_peak_mb": max(peak_sampled, _vm_hwm(server)) / 1e6,
        "rss_after_mb": rss_after / 1e6,
        "rss_after_close_mb": server.rss_bytes(serving_only=True) / 1e6,
        "loadgen_cpu_pct": loadgen,
    }


def _check_content(step2: bytes, expected: dict[str, str]) -> bool:
    """Whether a sync step 2 message holds the document that was sent, field by field."""
    from pycrdt import Doc

    pos = 2
    n = shift = 0
    while True:  # the update's length
        byte = step2[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    doc: Doc[Any] = Doc()
    doc.apply_update(step2[pos : pos + n])
    return bigdoc.content_of(doc) == expected


async def bigjoin(server: Server, sizes: Sizes) -> Result:
    updates = await asyncio.to_thread(bigdoc.load, sizes.bigjoin_mb)
    expected = await asyncio.to_thread(lambda: bigdoc.content_of(bigdoc.assemble(updates)))
    result: Result = {"document_mb": sum(map(len, updates)) / 1e6, "updates": len(updates)}
    if server.spec is WIRE:  # the floor: it holds the document from its start
        os.environ["BENCH_BIGDOC_MB"] = str(sizes.bigjoin_mb)
        await server.restart()
        result["warm"] = await _join(server, "-", sizes.bigjoin_clients, expected)
        return result
    if server.spec is OPENDPIA:
        await server.stop()
        doc = await _new_dpia(server)
        await server.start()
    else:
        await server.restart()
        doc = doc_name("bigjoin")
    t_fill = time.perf_counter()
    writer = await _fill(server, doc, updates, 600)
    result["fill_s"] = time.perf_counter() - t_fill
    if server.spec.persistent:
        await writer.close()
        # OpenDPIA indexes a document for search a few seconds after its last commit (and a
        # new process catches up at start): let that happen here, not amid the join.
        await _quiet(server, 3.0 if server.spec is OPENDPIA else 0.0)
        await server.restart()
        await _quiet(server, 0.0)
        result["cold"] = await _join(server, doc, sizes.bigjoin_clients, expected)
        # Warm: a client holds the document open, then as many again join.
        holder = await join_one(server.port, server.path(doc), False, 120)
        result["warm"] = await _join(server, doc, sizes.bigjoin_clients, expected)
        holder.close()
    else:
        # In memory: the writer holds the document (it is gone once nobody is connected).
        # Without acknowledgements, wait until a fresh client is given all of it.
        deadline = time.monotonic() + 120
        while True:
            probe = await join_one(server.port, server.path(doc), True, 120)
            probe.close()
            if probe.kept and await asyncio.to_thread(_check_content, bytes(probe.kept), expected):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.spec.name} never held the whole document")
            await asyncio.sleep(0.5)
        result["warm"] = await _join(server, doc, sizes.bigjoin_clients, expected)
        await writer.close()
    return result
