"""Stock clients work unchanged: the npm y-websocket provider and pycrdt's own provider."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from pycrdt import Doc, Map, Provider, Text

from server.domain.access import Role
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.support.live import WAIT_SECONDS, LiveServer, issue_token, make_settings, serving
from tests.support.nodeclient import NodeClient
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


def _provider_url(server: LiveServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/dpia"


@pytest.mark.node
async def test_npm_y_websocket_and_python_clients_converge_and_survive_restart(
    live_server: LiveServer,
) -> None:
    token = issue_token(live_server.settings, "interop", Role.EDITOR)
    node = await NodeClient.start(_provider_url(live_server), "interop", token, saved=True)
    python = await YClient.connect(live_server.url("interop", saved=True))
    try:
        await node.call("wait_synced")
        edits = []
        for i in range(20):
            edits.append(node.call("insert", name="t", index=0, text=f"n{i} "))
            python.doc.get("t", type=Text).insert(0, f"p{i} ")
            python.doc.get("values", type=Map)[f"py{i}"] = i
            edits.append(node.call("set", map="values", key=f"node{i}", value={"i": i}))
            await asyncio.sleep(0.005)
        await asyncio.gather(*edits)

        async def node_view() -> tuple[str, dict[str, object]]:
            got = await node.call("get", texts=["t"], maps=["values"])
            return got["texts"]["t"], got["maps"]["values"]

        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                text, values = await node_view()
                mine = str(python.doc.get("t", type=Text))
                # Both sides: the Node client's own last edit may still be on its way to
                # the Python client when the Node client already has everything.
                theirs = python.doc.get("values", type=Map).to_py()
                if len(values) == 40 and text == mine and theirs == values:
                    break
                await asyncio.sleep(0.05)
        assert python.doc.get("values", type=Map).to_py() == values
        assert all(f"n{i} " in text and f"p{i} " in text for i in range(20))
        await node.call("wait_saved")
        await python.wait_saved()

        await python.close()
        await asyncio.to_thread(live_server.restart)
        # The stock provider reconnects by itself, to the same URL; the Python client
        # reconnects fresh.
        await node.call("wait_text", name="t", equals=text)
        python = await YClient.connect(live_server.url("interop"))
        assert str(python.doc.get("t", type=Text)) == text
        assert python.doc.get("values", type=Map).to_py() == values
        await node.call("insert", name="t", index=0, text="after ")
        await python.wait_until(lambda: str(python.doc.get("t", type=Text)).startswith("after "))
    finally:
        await node.quit()
        await python.close()


@pytest.mark.node
async def test_npm_client_sees_awareness_of_a_python_client_and_its_removal(
    live_server: LiveServer,
) -> None:
    token = issue_token(live_server.settings, "presence", Role.EDITOR)
    node = await NodeClient.start(_provider_url(live_server), "presence", token)
    python = await YClient.connect(live_server.url("presence"))
    try:
        await node.call("wait_synced")
        await python.set_awareness(4242, 1, {"user": {"name": "Priya", "color": "#0a5"}})
        async with asyncio.timeout(WAIT_SECONDS):
            while "4242" not in (await node.call("awareness_states"))["states"]:
                await asyncio.sleep(0.05)
        await python.close()
        async with asyncio.timeout(WAIT_SECONDS):
            while "4242" in (await node.call("awareness_states"))["states"]:
                await asyncio.sleep(0.05)
    finally:
        await node.quit()
        await python.close()


class _WebsocketChannel:
    """pycrdt's ``Channel`` protocol over a ``websockets`` client connection."""

    def __init__(self, websocket: websockets.ClientConnection, path: str) -> None:
        self._websocket = websocket
        self.path = path

    def __aiter__(self) -> _WebsocketChannel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._websocket.send(message)

    async def recv(self) -> bytes:
        message = await self._websocket.recv()
        assert isinstance(message, bytes)
        return message


async def test_pycrdt_provider_works_unchanged(live_server: LiveServer) -> None:
    seed = await YClient.connect(live_server.url("pycrdt-provider", saved=True))
    seed.doc.get("t", type=Text).insert(0, "from the server")
    await seed.wait_saved()

    doc: Doc[Text] = Doc()
    url = live_server.url("pycrdt-provider")
    async with (
        websockets.connect(url) as websocket,
        Provider(doc, _WebsocketChannel(websocket, "pycrdt-provider")) as provider,
    ):
        await asyncio.wait_for(provider.synced.wait(), WAIT_SECONDS)
        text = doc.get("t", type=Text)
        assert str(text) == "from the server"
        text += " and the provider"
        await seed.wait_until(
            lambda: str(seed.doc.get("t", type=Text)) == "from the server and the provider"
        )
    await seed.close()


@pytest.mark.node
async def test_after_a_restart_the_npm_provider_syncs_from_the_snapshot_its_room_left(
    sqlite_url: str,
) -> None:
    """A room leaving memory compacts what it logged, and the first connection after a
    restart is answered with that snapshot before the room builds the document
    (server.realtime.room): the stock provider gets all of it and edits on."""
    engine = create_engine(sqlite_url)
    store = SqlUpdateStore(engine)
    try:
        with serving(make_settings(sqlite_url, compact_every=10)) as server:
            await _written_then_reloaded(server, store)
    finally:
        await store.close()
        await engine.dispose()


async def _written_then_reloaded(server: LiveServer, store: SqlUpdateStore) -> None:
    python = await YClient.connect(server.url("reloaded", saved=True))
    text = python.doc.get("t", type=Text)
    for i in range(13):
        text.insert(len(text), f"a{i} ")
        if i % 4 == 0:
            await python.wait_saved()  # several commits: a tail past the threshold's
    await python.wait_saved()
    expected = str(text)
    await python.close()

    async def tail() -> int:
        stored = await store.load("reloaded")
        assert stored is not None
        return len(stored.tail)

    async with asyncio.timeout(WAIT_SECONDS):
        while await tail():  # the room unloads and compacts, in the background
            await asyncio.sleep(0.05)

    await asyncio.to_thread(server.restart)
    token = issue_token(server.settings, "reloaded", Role.EDITOR)
    node = await NodeClient.start(_provider_url(server), "reloaded", token, saved=True)
    try:
        await node.call("wait_text", name="t", equals=expected)
        await node.call("insert", name="t", index=0, text="then ")
        await node.call("wait_saved")
        check = await YClient.connect(server.url("reloaded"))
        assert str(check.doc.get("t", type=Text)) == "then " + expected
        await check.close()
    finally:
        await node.quit()


async def test_a_restart_compacts_the_documents_open_at_the_time(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    store = SqlUpdateStore(engine)
    try:
        with serving(make_settings(sqlite_url, compact_every=50)) as server:
            python = await YClient.connect(server.url("open", saved=True))
            text = python.doc.get("t", type=Text)
            for i in range(3):
                text.insert(len(text), f"w{i} ")
            await python.wait_saved()
            before = await store.load("open")
            assert before is not None and len(before.tail) == 3, "below the threshold"
            await asyncio.to_thread(server.restart)  # the client is still connected
            after = await store.load("open")
            assert after is not None and not after.tail and after.snapshot_seq == 3
            await python.close()
            again = await YClient.connect(server.url("open"))
            assert str(again.doc.get("t", type=Text)) == "w0 w1 w2 "
            await again.close()
    finally:
        await store.close()
        await engine.dispose()
