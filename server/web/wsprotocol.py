"""uvicorn's sans-I/O WebSocket protocol, able to write a frame encoded once for many peers.

A room broadcasts one message to every peer. Through ASGI each peer's ``send`` wraps the
message in a dict, hands it to the ``websockets`` state machine, which frames it anew, and
only then reaches the socket: the same bytes are framed once per peer. This protocol
publishes, in the connection's ASGI scope, a way to write bytes that are already a complete
server frame (``websockets.frames.Frame.serialize``, done once per broadcast by
``shared_frame``) straight to the transport. It is the same port, the same handshake, the
same ASGI app and auth; only the broadcast write skips the per-peer framing.

A large message (a big document's sync step 2) is not copied into a frame at all: its
header is written, then the very bytes object the room keeps for everyone who asks the
same, so the transports of a crowd joining a 20 MB document all reference one 20 MB object
(uvloop's transport keeps a reference, not a copy, of what it cannot send at once).

The direct write is taken only when it is exactly what the state machine would have sent:
the connection is open, no close was sent, the transport is not paused, and no extension
(permessage-deflate) was negotiated, since a compressed connection's frames differ per
peer. Otherwise the caller falls back to the ordinary ASGI ``send``.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

# The ASGI scope extension under which the connection's direct writer is published.
DIRECT_WRITE = "opendpia.websocket.direct_write"
# ... and the time (``time.perf_counter_ns``) its HTTP upgrade request was read.
UPGRADED_AT = "opendpia.websocket.upgraded_ns"
# ... and a way to read how many bytes its transport holds, not yet taken by the socket.
WRITE_BACKLOG = "opendpia.websocket.write_backlog"


class DirectWriteProtocol(WebSocketsSansIOProtocol):
    """Adds ``scope["extensions"][DIRECT_WRITE]``: ``write(frame) -> bool``,
    ``scope["extensions"][UPGRADED_AT]``: when the upgrade request was read, and
    ``scope["extensions"][WRITE_BACKLOG]``: ``() -> int``, the transport's unsent bytes."""

    def handle_connect(self, event: Request) -> None:
        upgraded_at = time.perf_counter_ns()
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT_WRITE] = self.write_encoded
            scope["extensions"][UPGRADED_AT] = upgraded_at
            scope["extensions"][WRITE_BACKLOG] = self.transport.get_write_buffer_size

    def write_encoded(self, frame: tuple[bytes, ...]) -> bool:
        """Write ``frame``, the parts of a whole unmasked server frame; False when it must
        go through ``send`` instead (then nothing was written)."""
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.extensions
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        if len(frame) == 1:
            self.transport.write(frame[0])
        else:
            self.transport.writelines(frame)  # one writev, no joined copy
        return True


def frame_header(length: int) -> bytes:
    """The header of an unmasked, final, binary frame of ``length`` payload bytes
    (RFC 6455 section 5.2), as ``Frame.serialize`` writes it."""
    if length < 126:
        return struct.pack("!BB", 0x82, length)
    if length < 65536:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


class SharedFrame:
    """One broadcast message and its frame on the wire, encoded at most once.

    The room passes the same message object to every peer of a broadcast; the peers of
    one broadcast share this cache, so the frame is built by the first one that can use it.
    """

    __slots__ = ("_frame", "_message")

    # A larger message is never copied into a frame: it goes as a header and the message
    # itself (one object however many peers), so nothing needs keeping here.
    KEPT_BYTES = 256 * 1024

    def __init__(self) -> None:
        self._message: bytes | None = None
        self._frame: tuple[bytes, ...] = ()

    def of(self, message: bytes) -> tuple[bytes, ...]:
        if message is self._message:
            return self._frame
        if len(message) > self.KEPT_BYTES:
            return (frame_header(len(message)), message)
        frame = (Frame(Opcode.BINARY, message).serialize(mask=False),)
        self._message, self._frame = message, frame
        return frame


shared_frame = SharedFrame()
