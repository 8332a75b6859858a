"""A lean asyncio WebSocket client speaking raw y-websocket bytes.

The `websockets` library costs tens of microseconds per received frame (futures, queues,
per-frame objects); with 100 receivers sharing two cores with the server, that would make the
load generator the bottleneck. This client is an `asyncio.Protocol`: it parses server frames
(unmasked) straight from the byte stream and masks its own frames with the all-zero key (valid
per RFC 6455 section 5.3; the server unmasks as usual, at the same cost).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import time
import zlib
from dataclasses import dataclass, field

from bench.yproto import (
    MARKER,
    MSG_AWARENESS,
    MSG_SAVED,
    MSG_SYNC,
    PRESENCE,
    SYNC_STEP1,
    SYNC_STEP1_EMPTY,
    SYNC_STEP2,
    SYNC_STEP2_EMPTY,
    SYNC_UPDATE,
    read_varuint,
)

OP_CONT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 2, 8, 9, 10

# Offer permessage-deflate as a browser does (``python -m bench --deflate``): a server that
# accepts compresses what it sends, and the client inflates every compressed message.
OFFER_DEFLATE = False
_DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
_ZERO_MASK = b"\x00\x00\x00\x00"


def frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """One client frame (FIN set, masked with the zero key)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


@dataclass
class Stats:
    """Deliveries seen by all receivers of one measurement."""

    latencies_ns: list[int] = field(default_factory=list)
    delivered: int = 0
    recording: bool = True


class YClient(asyncio.Protocol):
    """One y-websocket peer: syncs, records markers of other writers, counts acknowledgements."""

    def __init__(self, writer_no: int, stats: Stats | None) -> None:
        self.writer_no = writer_no  # markers with this number are our own echoes
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.synced_at_ns = 0
        self.step2_payload = b""
        self.saved = 0  # last "saved" acknowledgement (OpenDPIA)
        self.writes_sent = 0  # write messages (sync step2 / update) sent
        self.seen = 0  # markers of other writers received as live updates
        self.seen_target = 0  # set seen_done (and stamp it) once seen reaches this
        self.seen_done = asyncio.Event()
        self.seen_done_ns = 0
        self.saved_target = 0  # set saved_done (and stamp it) once saved reaches this
        self.saved_done = asyncio.Event()
        self.saved_done_ns = 0
        # Presence (the presence scenario): latencies of others' states go to presence_stats.
        self.presence_stats: Stats | None = None
        self.presence_frames = 0  # awareness messages received
        self.presence_seen: dict[int, int] = {}  # writer number -> newest clock received
        self._handshake = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._open = False
        self._fragments = bytearray()
        self._compressed = False  # the message being reassembled has RSV1 set
        self._inflater: zlib._Decompress | None = None  # once deflate is negotiated
        self._can_write = asyncio.Event()
        self._can_write.set()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self._can_write.set()
        if not self._handshake.done():
            self._handshake.set_exception(ConnectionError(f"connection lost: {exc}"))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b"permessage-deflate" in bytes(buf[:end]).lower():
                self._inflater = zlib.decompressobj(wbits=-15)
            del buf[: end + 4]
            if b" 101 " not in status:
                self._handshake.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self._open = True
            self._handshake.set_result(None)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = (buf[pos + 2] << 8) | buf[pos + 3], 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = struct.unpack_from("!Q", buf, pos + 2)[0], 10
            if b1 & 0x80:  # masked server frame: not expected, but tolerate it
                head += 4
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            if b1 & 0x80:
                key = buf[pos + head - 4 : pos + head]
                payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            pos += head + n
            self._on_frame(b0, payload)
        del buf[:pos]

    # -- frames and messages ----------------------------------------------------------------
    def _on_frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode in (OP_BINARY, OP_CONT):
            if opcode == OP_BINARY:
                self._compressed = bool(b0 & 0x40)  # RSV1: a deflated message
            if not b0 & 0x80:
                self._fragments += payload
                return
            if self._fragments:
                payload = bytes(self._fragments + payload)
                self._fragments.clear()
            if self._compressed and self._inflater is not None:
                payload = self._inflater.decompress(payload + b"\x00\x00\xff\xff")
            self._on_message(payload)
        elif opcode == OP_PING:
            self._write(frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self._write(frame(payload[:2], OP_CLOSE))
            if self.transport is not None:
                self.transport.close()

    def _on_message(self, msg: bytes) -> None:
        now = time.perf_counter_ns()
        kind = msg[0]
        if kind == MSG_SYNC:
            sub = msg[1]
            if sub == SYNC_UPDATE:
                self._record(msg, now)
            elif sub == SYNC_STEP2:
                if not self.synced.is_set():
                    self.synced_at_ns = now
                    self.step2_payload = msg
                    self.synced.set()
                else:
                    self._record(msg, now)
            elif sub == SYNC_STEP1:
                self.send(SYNC_STEP2_EMPTY)  # we hold no content of our own
        elif kind == MSG_AWARENESS:
            self._record_presence(msg, now)
        elif kind == MSG_SAVED:
            self.saved = read_varuint(msg, 1)[0]
            if self.saved_target and self.saved >= self.saved_target:
                self._stamp(self.saved_done, "saved_done_ns", now)

    def _record(self, msg: bytes, now: int) -> None:
        stats = self.stats
        own = b"#%d:" % self.writer_no
        for match in MARKER.finditer(msg):
            if match.group(0).startswith(own):
                continue
            self.seen += 1
            if stats is not None and stats.recording:
                stats.delivered += 1
                stats.latencies_ns.append(now - int(match.group(3)))
        if self.seen_target and self.seen >= self.seen_target:
            self._stamp(self.seen_done, "seen_done_ns", now)

    def _record_presence(self, msg: bytes, now: int) -> None:
        """Others' bench presence states in an awareness message (merged or not)."""
        self.presence_frames += 1
        stats, seen, own = self.presence_stats, self.presence_seen, self.writer_no
        recording = stats is not None and stats.recording
        for match in PRESENCE.finditer(msg):
            writer_no = int(match.group(1))
            if writer_no == own:
                continue
            clock = int(match.group(2))
            if clock > seen.get(writer_no, 0):
                seen[writer_no] = clock
            if recording:
                assert stats is not None
                stats.delivered += 1
                stats.latencies_ns.append(now - int(match.group(3)))

    def _stamp(self, event: asyncio.Event, attr: str, now: int) -> None:
        if not event.is_set():
            setattr(self, attr, now)
            event.set()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # -- public API -------------------------------------------------------------------------
    def send(self, msg: bytes) -> None:
        if msg[0] == MSG_SYNC and msg[1] in (SYNC_STEP2, SYNC_UPDATE):
            self.writes_sent += 1
        self._write(frame(msg))

    def send_many(self, msgs: list[bytes]) -> None:
        """Several messages, one frame each, handed to the kernel in one write."""
        self.writes_sent += len(msgs)
        self._write(b"".join(frame(m) for m in msgs))

    async def drain(self) -> None:
        await self._can_write.wait()

    def write_buffer_size(self) -> int:
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    async def close(self) -> None:
        self._write(frame(struct.pack("!H", 1000), OP_CLOSE))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 2)
        if self.transport is not None:
            self.transport.abort()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(
    port: int,
    path: str,
    writer_no: int = -1,
    stats: Stats | None = None,
    sync: bool = True,
    wait_s: float = 30.0,
) -> YClient:
    """Open ``ws://127.0.0.1:<port><path>``, start the sync and (by default) await step 2."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: YClient(writer_no, stats), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{_DEFLATE_OFFER if OFFER_DEFLATE else ''}\r\n"
    )
    assert client.transport is not None
    client.transport.write(request.encode())
    try:
        await asyncio.wait_for(client._handshake, wait_s)
        client.send(SYNC_STEP1_EMPTY)
        if sync:
            await asyncio.wait_for(client.synced.wait(), wait_s)
    except BaseException:
        client.abort()
        raise
    return client
