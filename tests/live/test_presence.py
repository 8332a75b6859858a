"""Presence (awareness) is merged per room tick: one frame per tick, each client's latest state.

The tick is made long here (``awareness_tick_ms``) so that everything the test sends after
the tick opened lands in it on a busy machine too; every wait is a deadline poll.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.live import LiveServer, make_settings, serving
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

TICK_MS = 600


@pytest.fixture
def slow_tick_server(sqlite_url: str) -> Iterator[LiveServer]:
    with serving(make_settings(sqlite_url, awareness_tick_ms=TICK_MS)) as server:
        yield server


async def _open_tick(watcher: YClient, client_id: int) -> None:
    """The watcher's own presence goes at once (the room was quiet) and opens a tick."""
    await watcher.set_awareness(client_id, 1, {"user": {"name": "Watcher"}})
    await watcher.wait_until(lambda: client_id in watcher.awareness)
    assert len(watcher.awareness_messages) == 1


def _caret(name: str, position: int) -> dict[str, Any]:
    return {"user": {"name": name}, "cursor": {"anchor": position, "head": position}}


async def test_many_caret_moves_in_one_tick_reach_every_peer_as_one_frame_of_latest_states(
    slow_tick_server: LiveServer,
) -> None:
    url = slow_tick_server.url("presence-merge")
    watcher = await YClient.connect(url)
    movers = [await YClient.connect(url) for _ in range(5)]
    try:
        await _open_tick(watcher, 1000)
        for clock in (1, 2, 3):  # 15 messages, each its own frame, within the tick
            for i, mover in enumerate(movers):
                await mover.set_awareness(2000 + i, clock, _caret(f"M{i}", clock * 10 + i))
        latest = sorted((2000 + i, 3, _caret(f"M{i}", 30 + i)) for i in range(5))

        for client in (watcher, *movers):
            await client.wait_until(
                lambda c=client: all(c.awareness.get(2000 + i, (0,))[0] == 3 for i in range(5))
            )
        assert len(watcher.awareness_messages) == 2, watcher.awareness_messages
        assert sorted(watcher.awareness_messages[1]) == latest
        for mover in movers:  # the same single frame reached every peer, senders included
            moves = [m for m in mover.awareness_messages if any(e[0] >= 2000 for e in m)]
            assert [sorted(m) for m in moves] == [latest]
    finally:
        for client in (watcher, *movers):
            await client.close()


async def test_a_leaving_client_removal_is_delivered_and_not_overtaken_by_its_older_state(
    slow_tick_server: LiveServer,
) -> None:
    url = slow_tick_server.url("presence-leave")
    watcher = await YClient.connect(url)
    leaver = await YClient.connect(url)
    try:
        await _open_tick(watcher, 1000)
        # States that wait for the end of the tick; then the client leaves within it.
        await leaver.set_awareness(3000, 1, _caret("Leaver", 1))
        await leaver.set_awareness(3000, 2, _caret("Leaver", 2))
        await leaver.close()
        await watcher.wait_until(lambda: watcher.awareness.get(3000, (0, {}))[1] is None)

        seen = [entry for m in watcher.awareness_messages for entry in m if entry[0] == 3000]
        clocks = [clock for _, clock, _ in seen]
        assert clocks == sorted(set(clocks)), f"an older state came after a newer one: {seen}"
        assert seen[-1] == (3000, 3, None)
        # Nothing of the leaver arrives after its removal, even once the tick is over.
        await watcher.set_awareness(1000, 2, {"user": {"name": "Watcher", "moved": True}})
        await watcher.wait_until(lambda: watcher.awareness[1000][0] == 2)
        assert watcher.awareness[3000] == (3, None)
    finally:
        await watcher.close()
        await leaver.close()


async def test_a_change_that_waits_for_the_tick_is_sent_when_the_tick_ends(
    slow_tick_server: LiveServer,
) -> None:
    url = slow_tick_server.url("presence-quiet")
    watcher = await YClient.connect(url)
    mover = await YClient.connect(url)
    try:
        await _open_tick(watcher, 1000)
        await mover.set_awareness(4000, 1, _caret("Mover", 1))
        await watcher.wait_until(lambda: 4000 in watcher.awareness)
        # Nothing else moves: the tick's end alone sends it, in one frame of its own.
        assert len(watcher.awareness_messages) == 2
        assert watcher.awareness_messages[1] == [(4000, 1, _caret("Mover", 1))]
    finally:
        await watcher.close()
        await mover.close()
