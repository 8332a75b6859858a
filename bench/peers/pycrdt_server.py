"""Minimal pycrdt-websocket server under uvicorn: ws://127.0.0.1:<port>/<room>.

Usage: python -m bench.peers.pycrdt_server <port> [--store PATH]

With ``--store`` every room is backed by pycrdt-store's SQLiteYStore (one row per update) and
loaded from it when the room starts. Room creation is serialised by a lock: pycrdt-websocket
0.16.5 can hang clients that join a new room at the same moment.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import suppress
from typing import Any

import uvicorn
from pycrdt.store import SQLiteYStore
from pycrdt.store.base import YDocNotFound
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom


class LockedWebsocketServer(WebsocketServer):
    def __init__(self, store_path: str | None) -> None:
        super().__init__(auto_clean_rooms=True)
        self._store_path = store_path
        self._room_lock = asyncio.Lock()

    async def get_room(self, name: str) -> YRoom:
        async with self._room_lock:
            room = self.rooms.get(name)
            if room is not None:
                return room
            if self._store_path is None:
                room = YRoom(ready=True, log=self.log)
                self.rooms[name] = room
                await self.start_room(room)
                return room
            store = SQLiteYStore(path=name, log=self.log)
            store.db_path = self._store_path
            room = YRoom(ready=False, ystore=store, log=self.log)
            self.rooms[name] = room
            await self.start_room(room)
            async with store.start_lock:
                if not store.started.is_set():
                    assert self._task_group is not None
                    await self._task_group.start(store.start)
            with suppress(YDocNotFound):  # a new document
                await store.apply_updates(room.ydoc)
            room.ready = True
            return room


def make_app(store_path: str | None) -> Any:
    server = LockedWebsocketServer(store_path)
    websockets = ASGIServer(server)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})
                return
            await websockets(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                app.task = asyncio.create_task(server.start())  # type: ignore[attr-defined]
                await server.started.wait()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await server.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--store", default=None, help="SQLite file for pycrdt-store")
    args = parser.parse_args()
    uvicorn.run(make_app(args.store), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
