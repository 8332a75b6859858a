"""A broadcast is framed once and the same bytes reach every peer (issue 18, target 1).

Receivers here read the raw TCP stream, so what is compared is the frame as it left the
server, header and all. Framing is counted at ``websockets.frames.Frame.serialize``, which
both the ASGI path (``conn.send_binary``) and the shared path go through: one broadcast to
five peers must be framed once, not five times.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import pytest
import websockets
from pycrdt import Text
from websockets.frames import Frame, Opcode

from server.domain.access import Role
from tests.support.live import (
    WAIT_SECONDS,
    LiveServer,
    issue_token,
    make_settings,
    serving,
    upgrade_request,
)
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

RECEIVERS = 5


class RawReceiver:
    """A y-websocket peer that records every server frame exactly as it came off the wire.

    It answers nothing (a silent observer is a valid peer: the server sends it sync step 1
    and then every broadcast)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.frames: list[bytes] = []

    @classmethod
    async def connect(
        cls, server: LiveServer, document_id: str, *, offer_deflate: bool = False
    ) -> RawReceiver:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        token = issue_token(server.settings, document_id, Role.VIEWER)
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if offer_deflate else ""
        writer.write(upgrade_request(f"/ws/dpia/{document_id}?token={token}", extra_headers=offer))
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"permessage-deflate" not in head.lower(), "deflate is off unless configured"
        return cls(reader, writer)

    async def read_frame(self) -> bytes:
        header = await self._reader.readexactly(2)
        assert header[1] & 0x80 == 0, "server frames are not masked"
        length = header[1] & 0x7F
        extra = b""
        if length == 126:
            extra = await self._reader.readexactly(2)
            (length,) = struct.unpack("!H", extra)
        elif length == 127:
            extra = await self._reader.readexactly(8)
            (length,) = struct.unpack("!Q", extra)
        frame = header + extra + await self._reader.readexactly(length)
        self.frames.append(frame)
        return frame

    async def frame_holding(self, marker: bytes) -> bytes:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                frame = await self.read_frame()
                if marker in frame:
                    return frame

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def test_a_broadcast_is_framed_once_and_every_peer_gets_the_same_bytes(
    live_server: LiveServer, framings: list[bytes]
) -> None:
    writer = await YClient.connect(live_server.url("shared", saved=True))  # makes the document
    receivers = [await RawReceiver.connect(live_server, "shared") for _ in range(RECEIVERS)]
    try:
        marker = "framed-once-7f3a"
        writer.doc.get("t", type=Text).insert(0, marker)
        frames = await asyncio.gather(
            *(receiver.frame_holding(marker.encode()) for receiver in receivers)
        )
    finally:
        await writer.close()
        for receiver in receivers:
            await receiver.close()
    assert len(set(frames)) == 1, "every peer got the same bytes"
    (frame,) = set(frames)
    assert frame[0] == 0x82, "one final binary frame"
    payload = frame[2 + {126: 2, 127: 8}.get(frame[1], 0) :]
    times = framings.count(payload)
    assert times == 1, f"framed {times} times for {RECEIVERS} peers"
    assert Frame(Opcode.BINARY, payload).serialize(mask=False) == frame, "a well-formed frame"


@pytest.fixture
def deflating_server(sqlite_url: str) -> Iterator[LiveServer]:
    with serving(make_settings(sqlite_url, ws_deflate=True)) as server:
        yield server


async def test_with_deflate_on_compressed_and_plain_peers_share_a_room(
    deflating_server: LiveServer,
) -> None:
    """A peer that negotiated permessage-deflate gets its own compressed frame (the shared
    frame would be wrong for it); a plain peer in the same room still gets the plain one."""
    server = deflating_server
    writer = await YClient.connect(server.url("mixed", saved=True))  # makes the document
    plain = await RawReceiver.connect(server, "mixed")
    compressed = await websockets.connect(
        server.url("mixed", role=Role.VIEWER), compression="deflate", ping_interval=None
    )
    try:
        assert compressed.protocol.extensions, "the client negotiated permessage-deflate"
        marker = "deflated-9c2e"
        writer.doc.get("t", type=Text).insert(0, marker)
        frame = await plain.frame_holding(marker.encode())
        async with asyncio.timeout(WAIT_SECONDS):
            while marker.encode() not in (message := await compressed.recv(decode=False)):
                pass
        assert frame.endswith(message), "both got the same message"
    finally:
        await writer.close()
        await compressed.close()
        await plain.close()
