"""A room just loaded answers a client holding nothing from the stored bytes, and builds its
document after (server.realtime.room, ``Room.doc``): on SQLite and PostgreSQL, with what an
earlier run of the server left stored (a snapshot and the updates logged after it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Doc, Map, Text

from server.domain.documents import StoredDocument
from server.domain.shape import Limits
from server.realtime import protocol
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.live import until
from tests.support.rooms import FakePeer, editor_peer, edits, text_of
from tests.support.services import running

pytestmark = pytest.mark.asyncio

EMPTY_STATE_VECTOR = b"\x00"
LIMITS = Limits(field_bytes=1 << 20, document_bytes=1 << 24)


@pytest_asyncio.fixture
async def store(database_url: str) -> AsyncIterator[SqlUpdateStore]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    store = SqlUpdateStore(engine)
    try:
        yield store
    finally:
        await store.close()
        await engine.dispose()


@asynccontextmanager
async def _server(store: SqlUpdateStore) -> AsyncIterator[tuple[RoomManager, GroupCommitter]]:
    """One run of the server's rooms (a new one for each run: nothing loaded)."""
    committer = GroupCommitter(store, window_seconds=0.001)
    rooms = RoomManager(store, committer, grace_seconds=60.0, compact_every=5, limits=LIMITS)
    async with running(committer.run, rooms.run):
        yield rooms, committer
        await committer.idle()


async def _written(
    store: SqlUpdateStore, document_id: str, compacted: int, after: int
) -> tuple[str, StoredDocument]:
    """Edits written in an earlier run: ``compacted`` of them in a snapshot, then ``after``
    more in the log after it. The text they make, and what is stored."""
    updates = edits(compacted + after)
    async with _server(store) as (rooms, committer):
        writer = editor_peer(document_id)
        room = await rooms.join(writer)
        for part in (updates[:compacted], updates[compacted:]):
            for update in part:
                room.receive(writer, protocol.sync_update(update))
            await room.all_saved()
            await committer.idle()
        text = text_of(room.doc)
    stored = await store.load(document_id)
    assert stored is not None
    assert stored.snapshot_seq == compacted and len(stored.tail) == after
    return text, stored


def _messages(peer: FakePeer) -> list[protocol.SyncMessage]:
    found = []
    for frame in peer.frames:
        for message in protocol.parse_frame(frame):
            if isinstance(message, protocol.SyncMessage):
                found.append(message)
    return found


def _applied(messages: list[protocol.SyncMessage]) -> Doc[Any]:
    client: Doc[Any] = Doc()
    for message in messages:
        if message.step is not protocol.SyncStep.STEP1:
            client.apply_update(message.payload)
    return client


async def test_a_client_holding_nothing_gets_the_stored_snapshot_before_the_document_is_built(
    store: SqlUpdateStore,
) -> None:
    text, stored = await _written(store, "reload", 10, 0)
    assert stored.snapshot is not None and not stored.tail

    async with _server(store) as (rooms, _):
        peer = editor_peer("reload")
        room = await rooms.join(peer)
        assert not room.built and not _messages(peer), "no step 1 before the document"
        room.receive(peer, protocol.sync_step1(EMPTY_STATE_VECTOR))
        assert not room.built, "answered before the document is built"
        [answer] = _messages(peer)
        assert answer.step is protocol.SyncStep.STEP2 and answer.payload == stored.snapshot
        assert text_of(_applied([answer])) == text

        await until(lambda: room.built, "the document is built right after")
        later = _messages(peer)[1:]
        assert [m.step for m in later] == [protocol.SyncStep.STEP1], "then the room's step 1"
        assert later[0].payload == room.doc.get_state()
        assert room.guard is not None, "the guard comes with the document"
        assert text_of(room.doc) == text


async def test_with_updates_logged_after_the_snapshot_step_2_still_holds_everything(
    store: SqlUpdateStore,
) -> None:
    text, _ = await _written(store, "tail", 10, 3)

    async with _server(store) as (rooms, _):
        peer = editor_peer("tail")
        room = await rooms.join(peer)
        room.receive(peer, protocol.sync_step1(EMPTY_STATE_VECTOR))
        assert room.built, "a tail is applied by the room first"
        steps = [m.step for m in _messages(peer)]
        assert steps == [protocol.SyncStep.STEP1, protocol.SyncStep.STEP2]
        assert text_of(_applied(_messages(peer)[1:])) == text, "synced means all of it"


async def test_a_room_leaving_memory_compacts_what_it_logged(store: SqlUpdateStore) -> None:
    text, stored = await _written(store, "leaving", 5, 2)
    assert stored.tail
    committer = GroupCommitter(store, window_seconds=0.001)
    rooms = RoomManager(store, committer, grace_seconds=0.0, compact_every=5)
    async with running(committer.run, rooms.run):
        peer = editor_peer("leaving")
        room = await rooms.join(peer)
        room.receive(peer, protocol.sync_update(_appended(room, "!")))
        await room.all_saved()
        rooms.leave(room, peer)
        await until(lambda: "leaving" not in rooms.rooms, "the room unloaded")
        await committer.idle()
    after = await store.load("leaving")
    assert after is not None and not after.tail and after.snapshot_seq == stored.last_seq + 1
    assert text_of(after.to_doc()) == text + "!"


def _appended(room: Any, words: str) -> bytes:
    client: Doc[Any] = Doc()
    client.apply_update(room.doc.get_update())
    before = client.get_state()
    text = client.get("t", type=Text)
    text.insert(len(text), words)
    return client.get_update(before)


async def test_a_client_that_asks_nothing_still_gets_the_rooms_step_1(
    store: SqlUpdateStore,
) -> None:
    await _written(store, "quiet", 5, 2)
    async with _server(store) as (rooms, _):
        peer = editor_peer("quiet")
        room = await rooms.join(peer)
        await until(lambda: bool(_messages(peer)), "the room's step 1")
        assert room.built
        assert [m.step for m in _messages(peer)] == [protocol.SyncStep.STEP1]


async def test_a_first_write_before_the_build_is_checked_like_any_other(
    store: SqlUpdateStore,
) -> None:
    text, stored = await _written(store, "forged", 10, 2)
    client: Doc[Any] = Doc()
    client.apply_update(stored.to_doc().get_update())
    before = client.get_state()
    client.get("meta", type=Map)["status"] = "approved"  # what only the server may write
    forged = client.get_update(before)

    async with _server(store) as (rooms, _):
        peer = editor_peer("forged")
        room = await rooms.join(peer)
        assert not room.built
        room.receive(peer, protocol.sync_update(forged))
        assert room.built and room.guard is not None
        denied = [f for f in peer.frames if f[0] == protocol.MessageType.AUTH]
        assert denied, "the client is told its write was not taken"
        assert room.doc.get("meta", type=Map).to_py() == {}
        await room.all_saved()
    after = await store.load("forged")
    assert after is not None and after.last_seq == stored.last_seq, "nothing logged"
    assert text_of(after.to_doc()) == text
