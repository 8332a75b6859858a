"""The floor for ``bigjoin``: the least a server can do for a crowd joining a document.

Usage: python -m bench.peers.wire_server <port>   (document size from BENCH_BIGDOC_MB)

It is not a y-websocket server. At start it builds ``bench.bigdoc``'s document, encodes it
once as a sync step 2 message and frames it; then it answers every WebSocket upgrade with
that frame (the same bytes object for every client, written by uvloop, which keeps a
reference, not a copy) and ignores whatever the client sends. No auth, no rooms, no CRDT
work per client: what is left is the loopback and the clients' reading, so the clients'
join times against it are the machine's floor for the scenario.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import sys

from bench.yproto import varuint

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def main() -> None:
    import uvloop

    from bench import bigdoc

    port = int(sys.argv[1])
    state = bigdoc.assemble(
        bigdoc.load(float(os.environ.get("BENCH_BIGDOC_MB", "20")))
    ).get_update()
    message = b"\x00\x01" + varuint(len(state)) + state
    header = struct.pack("!BBQ", 0x82, 127, len(message))

    class Answer(asyncio.Protocol):
        def __init__(self) -> None:
            self.transport: asyncio.Transport | None = None
            self.head = b""
            self.open = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport

        def data_received(self, data: bytes) -> None:
            if self.open or self.transport is None:
                return
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            key = b""
            for line in self.head.split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip()
            if not key:  # the readiness probe
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                self.transport.close()
                return
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            self.open = True
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.transport.writelines([header, message])

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    main()
