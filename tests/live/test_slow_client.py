"""A client that stops reading neither stalls its room nor makes the server hoard memory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from pycrdt import Text

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

QUEUE_LIMIT = 256 * 1024


@pytest.fixture
def strict_server(sqlite_url: str) -> Iterator[LiveServer]:
    # Keepalive drops the peer that never reads; the two that do must answer its pings in
    # time even on a loaded machine, so not too short.
    settings = make_settings(sqlite_url, send_queue_bytes=QUEUE_LIMIT, ws_ping_seconds=2)
    with serving(settings) as server:
        yield server


async def _stalled_reader(server: LiveServer, document_id: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    token = issue_token(server.settings, document_id, Role.EDITOR)
    sock.sendall(upgrade_request(f"/ws/dpia/{document_id}?token={token}"))
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


async def test_a_stalled_reader_is_dropped_while_the_room_carries_on(
    strict_server: LiveServer,
) -> None:
    server = strict_server
    stalled = await _stalled_reader(server, "busy")
    writer = await YClient.connect(server.url("busy", saved=True))
    reader = await YClient.connect(server.url("busy"))
    try:
        text = writer.doc.get("t", type=Text)
        chunk = "x" * 16_000
        for i in range(200):  # about 3 MB: past the kernel buffers and the queue bound
            text += f"{i:04d}{chunk}"
            if i % 20 == 0:
                await writer.wait_saved()
        await writer.wait_saved()
        expected = len(str(text))
        await reader.wait_until(lambda: len(str(reader.doc.get("t", type=Text))) == expected)

        rooms = server.runtime.rooms.rooms
        async with asyncio.timeout(
            WAIT_SECONDS
        ):  # keepalive gives up on the peer that never answers
            while len(rooms["busy"].peers) > 2:
                await asyncio.sleep(0.1)
        assert len(rooms["busy"].peers) == 2
    finally:
        stalled.close()
        await writer.close()
        await reader.close()
