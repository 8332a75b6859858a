"""Idle connections are pinged; a peer that never answers is dropped."""

from __future__ import annotations

import asyncio
import time

import pytest

from server.domain.access import Role
from tests.support.live import WAIT_SECONDS, LiveServer, issue_token, make_settings, upgrade_request

pytestmark = pytest.mark.asyncio

PING_SECONDS = 0.3


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return opcode, await reader.readexactly(length)


async def test_idle_connection_is_pinged_and_dropped_when_it_never_answers(
    sqlite_url: str,
) -> None:
    server = LiveServer(make_settings(sqlite_url, ws_ping_seconds=PING_SECONDS)).start()
    try:
        token = issue_token(server.settings, "idle", Role.EDITOR)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade_request(f"/ws/dpia/idle?token={token}"))
        response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101")
        opened = time.monotonic()
        pinged_at = None
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                try:
                    opcode, _ = await _read_frame(reader)
                except asyncio.IncompleteReadError:
                    break  # the server dropped us
                if opcode == 0x9 and pinged_at is None:
                    pinged_at = time.monotonic() - opened  # and we never answer
                if opcode == 0x8:
                    break
        dropped_at = time.monotonic() - opened
        writer.close()
        assert pinged_at is not None and pinged_at >= PING_SECONDS * 0.8
        assert dropped_at >= pinged_at + PING_SECONDS * 0.8
    finally:
        server.stop()
