"""The collaboration endpoint ``/ws/dpia/{dpia_id}``: y-websocket over ASGI.

Each connection has a reader (this handler) and a writer task. The room hands the peer
frames without waiting: a frame goes out at once when nothing is queued before it and the
transport takes it (the common case, see ``eager``); otherwise it waits in the peer's queue
for the writer task. A peer whose unsent frames pass the configured bound is closed with
1013 so that one slow client can neither stall the room nor grow memory without bound: its
provider reconnects and resynchronises.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from server import logs
from server.domain.access import Grant
from server.domain.errors import DomainError
from server.metrics import FIRST_SYNC_SECONDS
from server.realtime.protocol import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    ProtocolError,
    is_sync_step2,
)
from server.realtime.room import Room
from server.web import eager
from server.web.auth import SESSION_COOKIE, same_origin
from server.web.errors import CLOSE_FORBIDDEN, close_code_for, close_reason
from server.web.runtime import Runtime
from server.web.wsprotocol import DIRECT_WRITE, UPGRADED_AT, WRITE_BACKLOG, shared_frame

log = logging.getLogger("opendpia.web.collab")
_connection_ids = itertools.count(1)


class WebSocketPeer:
    """A room peer backed by an ASGI WebSocket connection."""

    def __init__(
        self,
        websocket: WebSocket,
        send: Send,
        grant: Grant,
        *,
        wants_saved: bool,
        limit: int,
        stall_seconds: float,
    ) -> None:
        self.id = f"c{next(_connection_ids)}"
        self.grant = grant
        self.wants_saved = wants_saved
        self._websocket = websocket
        self._send = send
        # Writes a frame encoded once for all peers (server.web.wsprotocol), when the
        # server offers it; None under another ASGI server.
        extensions = websocket.scope.get("extensions") or {}
        self._direct: Callable[[tuple[bytes, ...]], bool] | None = extensions.get(DIRECT_WRITE)
        # The server's share of this client's first sync ends when its first sync step 2
        # is handed to the socket (FIRST_SYNC_SECONDS); it starts at the upgrade request.
        self._upgraded_ns: int = extensions.get(UPGRADED_AT) or time.perf_counter_ns()
        self._write_backlog: Callable[[], int] = extensions.get(WRITE_BACKLOG) or (lambda: 0)
        self._first_sync_pending = True
        self._in_flight_frame = b""
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._queue_limit = limit
        self._stall_seconds = stall_seconds
        self.on_abandon: Callable[[], None] = lambda: None
        self._in_flight: Awaitable[None] | None = None
        self._writer_busy = False
        self._wake = asyncio.Event()
        self.closing: tuple[int, str] | None = None
        self.gone = False

    def send(self, frame: bytes) -> None:
        if self.closing is not None or self.gone:
            return
        if not self._queue and self._in_flight is None and not self._writer_busy:
            if self._direct is not None and self._direct(shared_frame.of(frame)):
                self._sent(frame)
                return
            try:
                self._in_flight = eager.start(
                    self._send({"type": "websocket.send", "bytes": frame})
                )
            except Exception as error:  # the client went away; the reader sees it
                self.gone = True
                log.debug("connection %s: send failed: %r", self.id, error)
                return
            if self._in_flight is not None:
                self._in_flight_frame = frame
                self._wake.set()
            else:
                self._sent(frame)
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if self._queued_bytes > self._queue_limit:
            log.warning("connection %s is too far behind; dropping it", self.id)
            self.abandon()
            return
        self._wake.set()

    def backlog(self) -> int:
        if self.gone or self.closing is not None:
            return 0
        in_flight = len(self._in_flight_frame) if self._in_flight is not None else 0
        return self._queued_bytes + in_flight + self._write_backlog()

    def _sent(self, frame: bytes) -> None:
        if self._first_sync_pending and is_sync_step2(frame):
            self._first_sync_pending = False
            FIRST_SYNC_SECONDS.observe((time.perf_counter_ns() - self._upgraded_ns) / 1e9)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, close_reason(reason))
            self._queue.clear()
            self._queued_bytes = 0
            self._wake.set()

    def abandon(self) -> None:
        """Give up on a client whose socket takes nothing: leave the room at once.

        Closing politely would wait for the very send buffer the client does not drain
        (and so would uvicorn's keepalive), so the connection is ended from our side and
        the room lets it go; the socket's own buffer is all that is left, and it is bounded.
        """
        if not self.gone:
            self.gone = True
            self.closing = self.closing or (CLOSE_TRY_AGAIN_LATER, "Too far behind")
            self._queue.clear()
            self._queued_bytes = 0
            self.on_abandon()

    async def run_writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._writer_busy = True
                if self._in_flight is not None:
                    async with asyncio.timeout(self._stall_seconds):
                        await self._in_flight
                    self._in_flight = None
                    self._sent(self._in_flight_frame)
                    self._in_flight_frame = b""
                while self._queue:
                    frame = self._queue.popleft()
                    self._queued_bytes -= len(frame)
                    async with asyncio.timeout(self._stall_seconds):
                        await self._send({"type": "websocket.send", "bytes": frame})
                    self._sent(frame)
                self._writer_busy = False
                if self.closing is not None:
                    code, reason = self.closing
                    async with asyncio.timeout(self._stall_seconds):
                        await self._websocket.close(code, reason)
                    return
        except TimeoutError:
            log.warning(
                "connection %s took nothing for %.0f s; dropping it", self.id, self._stall_seconds
            )
            self.abandon()
        except Exception as error:
            # The client went away mid-send; the reader sees the disconnect.
            self.gone = True
            log.debug("connection %s: send failed: %r", self.id, error)


class CollaborationEndpoint:
    """The ASGI app behind ``/ws/dpia/{dpia_id}`` (raw ``send`` on the hot path)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        runtime: Runtime = websocket.state.runtime
        document_id: str = websocket.path_params["dpia_id"]
        logs.document_id.set(document_id[:100])
        await websocket.accept()
        session = websocket.cookies.get(SESSION_COOKIE)
        if session and not same_origin(websocket):
            await websocket.close(CLOSE_FORBIDDEN, "Cross-site connection refused")
            return
        try:
            grant = await runtime.access.authorize(
                document_id, token=websocket.query_params.get("token"), session=session
            )
        except DomainError as error:
            log.info("refused connection to %s: %s", document_id, error)
            await websocket.close(close_code_for(error), close_reason(error))
            return
        peer = WebSocketPeer(
            websocket,
            send,
            grant,
            wants_saved=websocket.query_params.get("saved") in ("1", "true"),
            limit=runtime.settings.send_queue_bytes,
            stall_seconds=2 * runtime.settings.ws_ping_seconds,
        )
        try:
            room = await runtime.rooms.join(peer)
        except DomainError as error:
            await websocket.close(close_code_for(error), close_reason(error))
            return
        except Exception:
            log.exception("could not open document %s", document_id)
            await websocket.close(
                CLOSE_TRY_AGAIN_LATER, "The document could not be opened; try again"
            )
            return
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(peer.run_writer())
                reader = tasks.create_task(_read(receive, room, peer))

                def stop() -> None:
                    reader.cancel()
                    writer.cancel()

                peer.on_abandon = stop
                reader.add_done_callback(
                    lambda _: None if peer.closing is not None else writer.cancel()
                )
        finally:
            runtime.rooms.leave(room, peer)


async def _read(receive: Receive, room: Room, peer: WebSocketPeer) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            if message.get("code") == CLOSE_TOO_BIG:
                log.warning("connection %s closed: frame over the size limit", peer.id)
            return
        data = message.get("bytes")
        if data is None:
            log.warning("connection %s sent a text frame", peer.id)
            peer.close(CLOSE_UNSUPPORTED_DATA, "Binary frames only (y-websocket protocol)")
            return
        try:
            room.receive(peer, data)
        except ProtocolError as error:
            log.warning("connection %s to %s closed: %s", peer.id, room.document_id, error.reason)
            peer.close(error.code, error.reason)
            return
        except Exception:
            log.exception("connection %s to %s: internal error", peer.id, room.document_id)
            peer.close(CLOSE_INTERNAL_ERROR, "Internal error; the document is unharmed")
            return
