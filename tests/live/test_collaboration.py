"""Two or more clients editing one document through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pycrdt import Map, Text

from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


async def test_two_pycrdt_clients_converge_on_concurrent_edits(live_server: LiveServer) -> None:
    url = live_server.url("dpia-1")
    alice, bob = await YClient.connect(url), await YClient.connect(url)
    try:
        alice.doc.get("field:need.aims", type=Text).insert(0, "Reduce rough sleeping. ")
        bob.doc.get("field:need.aims", type=Text).insert(0, "Share data lawfully. ")
        bob.doc.get("values", type=Map)["need.type"] = "sharing"

        expected_length = len("Reduce rough sleeping. Share data lawfully. ")

        def converged() -> bool:
            texts = [str(c.doc.get("field:need.aims", type=Text)) for c in (alice, bob)]
            maps = [c.doc.get("values", type=Map).to_py() for c in (alice, bob)]
            return texts[0] == texts[1] and len(texts[0]) == expected_length and maps[0] == maps[1]

        await alice.wait_until(converged)
        await bob.wait_until(converged)
        text = str(alice.doc.get("field:need.aims", type=Text))
        assert "Reduce rough sleeping. " in text and "Share data lawfully. " in text
        assert str(bob.doc.get("field:need.aims", type=Text)) == text
        assert alice.doc.get("values", type=Map).to_py() == {"need.type": "sharing"}
    finally:
        await alice.close()
        await bob.close()


@pytest.fixture
def server_on_each_database(database_url: str) -> Iterator[LiveServer]:
    with serving(make_settings(database_url)) as server:
        yield server


async def test_saved_acknowledgement_comes_after_commit_and_survives_restart(
    server_on_each_database: LiveServer,
) -> None:
    live_server = server_on_each_database
    client = await YClient.connect(live_server.url("dpia-2", saved=True))
    text = client.doc.get("t", type=Text)
    for i in range(50):
        text += f"{i},"
    await client.wait_saved()
    assert client.saved == client.writes_sent
    await client.close()
    await asyncio.to_thread(live_server.restart)  # it blocks: not on the test's event loop
    fresh = await YClient.connect(live_server.url("dpia-2"))
    try:
        assert str(fresh.doc.get("t", type=Text)) == "".join(f"{i}," for i in range(50))
    finally:
        await fresh.close()


async def test_late_joiner_receives_the_whole_document(live_server: LiveServer) -> None:
    first = await YClient.connect(live_server.url("dpia-3", saved=True))
    first.doc.get("t", type=Text).insert(0, "already here")
    await first.wait_saved()
    late = await YClient.connect(live_server.url("dpia-3"))
    try:
        assert str(late.doc.get("t", type=Text)) == "already here"
    finally:
        await first.close()
        await late.close()


async def test_awareness_is_echoed_to_sender_and_removed_on_close(
    live_server: LiveServer,
) -> None:
    url = live_server.url("dpia-4")
    alice, bob = await YClient.connect(url), await YClient.connect(url)
    try:
        await alice.set_awareness(1111, 1, {"user": {"name": "Alice", "color": "#c00"}})
        await alice.wait_until(lambda: 1111 in alice.awareness)
        await bob.wait_until(lambda: 1111 in bob.awareness)
        assert bob.awareness[1111] == (1, {"user": {"name": "Alice", "color": "#c00"}})
        await alice.close()
        await bob.wait_until(lambda: bob.awareness[1111][1] is None)
        assert bob.awareness[1111][0] == 2
    finally:
        await bob.close()


async def test_query_awareness_returns_present_clients(live_server: LiveServer) -> None:
    url = live_server.url("dpia-5")
    alice = await YClient.connect(url)
    await alice.set_awareness(7, 3, {"user": {"name": "Alice"}})
    await alice.wait_until(lambda: 7 in alice.awareness)
    bob = await YClient.connect(url)
    try:
        bob.awareness.clear()
        await bob.send_raw(b"\x03")
        await bob.wait_until(lambda: 7 in bob.awareness)
        assert bob.awareness[7] == (3, {"user": {"name": "Alice"}})
    finally:
        await alice.close()
        await bob.close()


async def test_many_messages_in_one_frame_are_all_applied(live_server: LiveServer) -> None:
    from pycrdt import Doc

    url = live_server.url("dpia-6", saved=True)
    client = await YClient.connect(url)
    source = Doc()
    text = source.get("t", type=Text)
    frames = []
    state = source.get_state()
    for word in ("one ", "two ", "three"):
        text += word
        update = source.get_update(state)
        state = source.get_state()
        frames.append(b"\x00\x02" + bytes([len(update)]) + update)
    await client.send_raw(b"".join(frames))
    client.writes_sent += 3
    await client.wait_saved()
    await client.wait_until(lambda: str(client.doc.get("t", type=Text)) == "one two three")
    await client.close()


async def test_room_unloads_after_grace_and_reloads_equal(live_server: LiveServer) -> None:
    client = await YClient.connect(live_server.url("dpia-7", saved=True))
    client.doc.get("t", type=Text).insert(0, "kept")
    await client.wait_saved()
    await client.close()
    rooms = live_server.runtime.rooms
    async with asyncio.timeout(WAIT_SECONDS):
        while "dpia-7" in rooms.rooms:
            await asyncio.sleep(0.05)
    again = await YClient.connect(live_server.url("dpia-7"))
    try:
        assert str(again.doc.get("t", type=Text)) == "kept"
    finally:
        await again.close()
