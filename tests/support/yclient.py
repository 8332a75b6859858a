"""A small y-websocket client for tests: a pycrdt Doc synchronised over ``websockets``.

Written independently of ``server.realtime.protocol`` (it decodes with pycrdt's own
``Decoder``) so that a symmetric mistake in the server's codec cannot hide itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets
from pycrdt import Decoder, Doc, TransactionEvent, write_var_uint

from tests.support.live import WAIT_SECONDS

SYNC_SECONDS = WAIT_SECONDS


def _message(kind: int, *parts: bytes) -> bytes:
    return write_var_uint(kind) + b"".join(parts)


def _varbytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


class YClient:
    """Connects, syncs, sends its doc's local changes, applies the server's."""

    def __init__(self, websocket: websockets.ClientConnection, doc: Doc) -> None:
        self.ws = websocket
        self.doc = doc
        self.synced = asyncio.Event()
        self.writes_sent = 0
        self.saved = 0
        self.denied: list[str] = []
        self.awareness: dict[int, tuple[int, Any]] = {}
        # Every awareness message received, as (client id, clock, state) entries, in order.
        self.awareness_messages: list[list[tuple[int, int, Any]]] = []
        self.unknown: list[int] = []
        self.frames_received = 0
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._changed = asyncio.Event()
        self._applying_remote = False
        self._closed = False
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscription = doc.observe(self._on_local)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(
        cls, url: str, doc: Doc | None = None, *, sync: bool = True, timeout: float = SYNC_SECONDS
    ) -> YClient:
        websocket = await websockets.connect(
            url, max_size=None, ping_interval=None, open_timeout=timeout
        )
        return await cls.attach(websocket, doc, sync=sync, timeout=timeout)

    @classmethod
    async def attach(
        cls,
        websocket: websockets.ClientConnection,
        doc: Doc | None = None,
        *,
        sync: bool = False,
        timeout: float = SYNC_SECONDS,
    ) -> YClient:
        """Speak y-websocket over an open connection (opened with cookies, say).

        The connection is the client's from here on: if the sync fails or is cancelled, it
        is closed before the error goes up (else it stays open for the rest of the process:
        the doc's observer keeps the client alive, so not even the GC closes it)."""
        client = cls(websocket, doc if doc is not None else Doc())
        try:
            client._tasks = [
                asyncio.create_task(client._read()),
                asyncio.create_task(client._write()),
            ]
            step1 = _message(0, write_var_uint(0), _varbytes(client.doc.get_state()))
            with contextlib.suppress(websockets.ConnectionClosed):
                await client.send_raw(step1)
            if sync:
                await client.wait_synced(timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def wait_synced(self, timeout: float = SYNC_SECONDS) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    def _on_local(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return
        self.writes_sent += 1
        self._outgoing.put_nowait(_message(0, write_var_uint(2), _varbytes(event.update)))

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def _write(self) -> None:
        while True:
            frame = await self._outgoing.get()
            try:
                await self.ws.send(frame)
            except websockets.ConnectionClosed:
                return

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self.frames_received += 1
                self._handle(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self._changed.set()

    def _handle(self, frame: bytes) -> None:
        decoder = Decoder(frame)
        kind = decoder.read_var_uint()
        if kind == 0:
            step = decoder.read_var_uint()
            payload = decoder.read_message()
            assert payload is not None
            if step == 0:
                self.writes_sent += 1
                reply = self.doc.get_update(payload)
                self._outgoing.put_nowait(_message(0, write_var_uint(1), _varbytes(reply)))
            else:
                self._applying_remote = True
                try:
                    self.doc.apply_update(payload)
                finally:
                    self._applying_remote = False
                if step == 1:
                    self.synced.set()
        elif kind == 1:
            payload = decoder.read_message()
            assert payload is not None
            inner = Decoder(payload)
            entries = []
            for _ in range(inner.read_var_uint()):
                client_id = inner.read_var_uint()
                clock = inner.read_var_uint()
                state = json.loads(inner.read_var_string())
                self.awareness[client_id] = (clock, state)
                entries.append((client_id, clock, state))
            self.awareness_messages.append(entries)
        elif kind == 2:
            decoder.read_var_uint()
            self.denied.append(decoder.read_var_string())
        elif kind == 100:
            self.saved = max(self.saved, decoder.read_var_uint())
        else:
            self.unknown.append(kind)
        self._changed.set()

    async def set_awareness(self, client_id: int, clock: int, state: Any) -> None:
        payload = (
            write_var_uint(1)
            + write_var_uint(client_id)
            + write_var_uint(clock)
            + _varbytes(json.dumps(state).encode())
        )
        await self.send_raw(_message(1, _varbytes(payload)))

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = WAIT_SECONDS
    ) -> None:
        """Wait until ``predicate`` holds; it may look at other clients too, so it is
        re-checked on every frame this client receives and at least every 20 ms."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                if self.close_code is not None:
                    raise ConnectionError(f"closed {self.close_code}: {self.close_reason}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)

    async def wait_saved(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until the server says every write message sent so far is committed."""
        await asyncio.sleep(0)  # let the writer pick up what was just queued
        await self.wait_until(lambda: self.saved >= self.writes_sent, timeout)

    async def wait_closed(self, timeout: float = WAIT_SECONDS) -> tuple[int | None, str | None]:
        async with asyncio.timeout(timeout):
            await asyncio.gather(self._tasks[0], return_exceptions=True)
        return self.close_code, self.close_reason

    async def close(self) -> None:
        """Close the connection; its socket is closed even if this is cancelled or the
        server does not finish the closing handshake in time."""
        if self._closed:
            return
        self._closed = True
        self.doc.unobserve(self._subscription)
        try:
            with contextlib.suppress(Exception):
                await self.ws.close()
        finally:
            if not self.ws.transport.is_closing():
                self.ws.transport.abort()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
