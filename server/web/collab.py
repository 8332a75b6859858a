"""The collaboration endpoint ``/ws/dpia/{dpia_id}``: y-websocket over Starlette.

Each connection has a reader (this handler) and a writer task. The room hands the writer
frames without waiting; the writer sends them in order. A peer whose unsent frames pass
the configured bound is closed with 1013 so that one slow client can neither stall the room
nor grow memory without bound: its provider reconnects and resynchronises.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque

from starlette.websockets import WebSocket

from server.domain.access import Grant
from server.domain.errors import DomainError
from server.realtime.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    ProtocolError,
)
from server.realtime.room import Room
from server.web.errors import close_code_for, close_reason
from server.web.runtime import Runtime

log = logging.getLogger("opendpia.web.collab")
_connection_ids = itertools.count(1)


class WebSocketPeer:
    """A room peer backed by a Starlette WebSocket."""

    def __init__(
        self, websocket: WebSocket, grant: Grant, *, wants_saved: bool, queue_limit: int
    ) -> None:
        self.id = f"c{next(_connection_ids)}"
        self.grant = grant
        self.wants_saved = wants_saved
        self._websocket = websocket
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._queue_limit = queue_limit
        self._wake = asyncio.Event()
        self.closing: tuple[int, str] | None = None

    def send(self, frame: bytes) -> None:
        if self.closing is not None:
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if self._queued_bytes > self._queue_limit:
            log.warning("connection %s is too far behind; closing it", self.id)
            self.close(CLOSE_TRY_AGAIN_LATER, "too far behind: reconnect to resynchronise")
            return
        self._wake.set()

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, close_reason(reason))
            self._queue.clear()
            self._queued_bytes = 0
            self._wake.set()

    async def run_writer(self) -> None:
        send = self._websocket.send
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    frame = self._queue.popleft()
                    self._queued_bytes -= len(frame)
                    await send({"type": "websocket.send", "bytes": frame})
                if self.closing is not None:
                    code, reason = self.closing
                    await self._websocket.close(code, reason)
                    return
        except Exception as error:
            # The client went away mid-send; the reader sees the disconnect.
            log.debug("connection %s: send failed: %r", self.id, error)


async def collaborate(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.state.runtime
    document_id: str = websocket.path_params["dpia_id"]
    await websocket.accept()
    try:
        grant = runtime.access.authorize(document_id, websocket.query_params.get("token"))
    except DomainError as error:
        log.info("refused connection to %s: %s", document_id, error)
        await websocket.close(close_code_for(error), close_reason(error))
        return
    peer = WebSocketPeer(
        websocket,
        grant,
        wants_saved=websocket.query_params.get("saved") in ("1", "true"),
        queue_limit=runtime.settings.send_queue_bytes,
    )
    try:
        room = await runtime.rooms.join(peer)
    except DomainError as error:
        await websocket.close(close_code_for(error), close_reason(error))
        return
    except Exception:
        log.exception("could not open document %s", document_id)
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "the document could not be opened; try again")
        return
    try:
        async with asyncio.TaskGroup() as tasks:
            writer = tasks.create_task(peer.run_writer())
            await _read(websocket, room, peer)
            if peer.closing is None:
                writer.cancel()
    finally:
        runtime.rooms.leave(room, peer)


async def _read(websocket: WebSocket, room: Room, peer: WebSocketPeer) -> None:
    receive = websocket.receive
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            if message.get("code") == CLOSE_TOO_BIG:
                log.warning("connection %s closed: frame over the size limit", peer.id)
            return
        data = message.get("bytes")
        if data is None:
            log.warning("connection %s sent a text frame", peer.id)
            peer.close(CLOSE_UNSUPPORTED_DATA, "binary frames only (y-websocket protocol)")
            return
        try:
            room.receive(peer, data)
        except ProtocolError as error:
            log.warning("connection %s to %s closed: %s", peer.id, room.document_id, error.reason)
            peer.close(error.code, error.reason)
            return
        except Exception:
            log.exception("connection %s to %s: internal error", peer.id, room.document_id)
            peer.close(CLOSE_INTERNAL_ERROR, "internal error; the document is unharmed")
            return
