"""Rooms, group commit and compaction against a real database, without the web layer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Doc, Text

from server.domain.bus import BusKind, BusMessage, LocalBus
from server.domain.documents import StoredDocument, UpdateRecord
from server.domain.shape import Limits
from server.realtime import answers as answers_module
from server.realtime import protocol
from server.realtime import room as room_module
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.live import until
from tests.support.rooms import FakePeer
from tests.support.rooms import editor_peer as _editor
from tests.support.rooms import edits as _edits
from tests.support.rooms import text_of as _text
from tests.support.services import running

pytestmark = pytest.mark.asyncio


class FlakyStore(SqlUpdateStore):
    """Fails to append rows of the documents in ``failing``; optionally slow."""

    failing: set[str]
    delay: float = 0.0
    compaction_hold: asyncio.Event | None = None  # compactions end only once it is set

    async def compact(self, document_id: str) -> int | None:
        seq = await super().compact(document_id)
        if self.compaction_hold is not None:
            await self.compaction_hold.wait()
        return seq

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        await asyncio.sleep(self.delay)
        if any(r.document_id in self.failing for r in records):
            raise OSError("disk says no")
        await super().append(records)


@dataclass
class Harness:
    store: FlakyStore
    committer: GroupCommitter
    rooms: RoomManager


@pytest_asyncio.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    store = FlakyStore(engine)
    store.failing = set()
    committer = GroupCommitter(store, window_seconds=0.001)
    rooms = RoomManager(store, committer, grace_seconds=0.0, compact_every=5)
    try:
        async with running(committer.run, rooms.run):
            yield Harness(store, committer, rooms)
    finally:
        await engine.dispose()


async def _stored_text(store: SqlUpdateStore, document_id: str) -> str:
    stored = await store.load(document_id)
    assert stored is not None
    return _text(stored.to_doc())


async def test_after_every_compaction_reload_equals_live(harness: Harness) -> None:
    peer = _editor("doc")
    room = await harness.rooms.join(peer)
    compactions_seen = 0
    for update in _edits(60):
        room.receive(peer, protocol.sync_update(update))
        await room.all_saved()
        await harness.committer.idle()
        if harness.committer.compactions > compactions_seen:
            compactions_seen = harness.committer.compactions
            assert await _stored_text(harness.store, "doc") == _text(room.doc)
    assert compactions_seen >= 10
    stored = await harness.store.load("doc")
    assert stored is not None and len(stored.tail) < 5


async def test_a_tail_committed_during_a_compaction_is_compacted_after_it(
    harness: Harness,
) -> None:
    hold = harness.store.compaction_hold = asyncio.Event()
    peer = _editor("doc")
    room = await harness.rooms.join(peer)
    updates = _edits(40)
    for update in updates[:10]:
        room.receive(peer, protocol.sync_update(update))
    await room.all_saved()  # past the threshold: a compaction starts, and is held
    for update in updates[10:]:
        room.receive(peer, protocol.sync_update(update))
    await room.all_saved()  # 30 more rows, committed while it is under way
    hold.set()
    await asyncio.wait_for(harness.committer.idle(), 30)
    stored = await harness.store.load("doc")
    assert stored is not None and len(stored.tail) < 5
    assert _text(stored.to_doc()) == _text(room.doc)


async def test_a_long_tail_is_compacted_when_its_document_loads(harness: Harness) -> None:
    await harness.store.create_document("doc", "alice")
    records = [
        UpdateRecord("doc", seq, update, "alice", "api", "test", datetime.now(UTC))
        for seq, update in enumerate(_edits(20), start=1)
    ]
    await harness.store.append(records)
    room = await harness.rooms.join(_editor("doc"))
    await asyncio.wait_for(harness.committer.idle(), 30)
    stored = await harness.store.load("doc")
    assert stored is not None and stored.snapshot_seq == 20 and not stored.tail
    assert _text(stored.to_doc()) == _text(room.doc)


def _answer_to_a_fresh_client(room: Any, document_id: str) -> bytes:
    """The sync step 2 a client holding nothing is sent (its step 1: an empty state)."""
    fresh = _editor(document_id)
    room.join(fresh)
    room.receive(fresh, protocol.sync_step1(b"\x00"))
    [answer] = protocol.parse_frame(fresh.frames[-1])
    assert isinstance(answer, protocol.SyncMessage) and answer.step is protocol.SyncStep.STEP2
    room.leave(fresh)
    return answer.payload


async def test_a_fresh_client_gets_the_stored_snapshot_then_each_new_state(
    harness: Harness,
) -> None:
    await harness.store.create_document("doc", "alice")
    edits = _edits(4)
    records = [
        UpdateRecord("doc", seq, update, "alice", "api", "test", datetime.now(UTC))
        for seq, update in enumerate(edits[:3], start=1)
    ]
    await harness.store.append(records)
    await harness.store.compact("doc")
    stored = await harness.store.load("doc")
    assert stored is not None and stored.snapshot is not None and not stored.tail
    writer = _editor("doc")
    room = await harness.rooms.join(writer)
    assert _answer_to_a_fresh_client(room, "doc") == stored.snapshot
    # The answer is kept while the document stays as it is, never once it has changed.
    room.receive(writer, protocol.sync_update(edits[3]))
    after: Doc[Any] = Doc()
    after.apply_update(_answer_to_a_fresh_client(room, "doc"))
    assert _text(after) == _text(room.doc) and "3;" in _text(after)


async def test_a_room_whose_commits_fail_holds_back_no_other_room(harness: Harness) -> None:
    harness.store.failing = {"bad"}
    good, bad = _editor("good"), _editor("bad")
    good_room = await harness.rooms.join(good)
    bad_room = await harness.rooms.join(bad)
    for update in _edits(3):
        bad_room.receive(bad, protocol.sync_update(update))
        good_room.receive(good, protocol.sync_update(update))
    await asyncio.wait_for(good_room.all_saved(), 30)
    assert good.saved == 3
    await asyncio.sleep(0.2)
    assert bad.saved == 0 and bad_room.uncommitted == 3  # not acknowledged, not dropped
    harness.store.failing = set()
    await asyncio.wait_for(bad_room.all_saved(), 30)
    assert bad.saved == 3
    assert await _stored_text(harness.store, "bad") == _text(bad_room.doc)


async def test_a_room_unloads_only_after_its_pending_writes_are_committed(
    harness: Harness,
) -> None:
    harness.store.delay = 0.3
    peer = _editor("slow")
    room = await harness.rooms.join(peer)
    for update in _edits(5):
        room.receive(peer, protocol.sync_update(update))
    harness.rooms.leave(room, peer)
    await asyncio.sleep(0.05)
    assert "slow" in harness.rooms.rooms  # still flushing
    async with asyncio.timeout(30):
        while "slow" in harness.rooms.rooms:
            await asyncio.sleep(0.02)
    assert await _stored_text(harness.store, "slow") == _text(room.doc)


async def test_concurrent_first_connections_load_one_room(harness: Harness) -> None:
    peers = [_editor("crowd") for _ in range(10)]
    joined = await asyncio.gather(*(harness.rooms.join(p) for p in peers))
    assert len({id(room) for room in joined}) == 1
    assert harness.rooms.loads == 1
    assert len(joined[0].peers) == 10


async def test_an_update_already_known_is_acknowledged_but_not_logged_again(
    harness: Harness,
) -> None:
    peer = _editor("dup")
    room = await harness.rooms.join(peer)
    update = _edits(1)[0]
    room.receive(peer, protocol.sync_update(update))
    room.receive(peer, protocol.sync_update(update))
    room.receive(peer, protocol.sync_step2(b"\x00\x00"))
    await room.all_saved()
    assert peer.saved == 3
    assert len(await harness.store.updates("dup")) == 1


async def test_awareness_renewals_are_batched_while_changes_go_at_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.realtime import room as room_module

    monkeypatch.setattr(room_module, "AWARENESS_RENEWAL_SECONDS", 0.2)
    ann, bob = _editor("aw"), _editor("aw")
    room = await harness.rooms.join(ann)
    room.join(bob)
    state = '{"user":{"name":"Ann"}}'

    def awareness_frames(peer: FakePeer) -> list[bytes]:
        return [f for f in peer.frames if f[0] == protocol.MessageType.AWARENESS]

    room.receive(ann, protocol.awareness(protocol.encode_awareness([_entry(1, state)])))
    assert len(awareness_frames(ann)) == len(awareness_frames(bob)) == 1  # echoed to sender
    for clock in range(2, 12):  # ten renewals: same state, newer clock
        room.receive(ann, protocol.awareness(protocol.encode_awareness([_entry(clock, state)])))
    assert len(awareness_frames(bob)) == 1
    await asyncio.sleep(0.3)
    frames = awareness_frames(bob)
    assert len(frames) == 2
    (message,) = protocol.parse_frame(frames[1])
    assert isinstance(message, protocol.AwarenessMessage)
    assert message.entries == [_entry(11, state)]


def _entry(clock: int, state: str) -> protocol.AwarenessEntry:
    return protocol.AwarenessEntry(1, clock, state)


async def test_a_room_waiting_on_a_failing_disk_still_lets_clients_join(
    harness: Harness,
) -> None:
    harness.store.failing = {"stuck"}
    first = _editor("stuck")
    room = await harness.rooms.join(first)
    room.receive(first, protocol.sync_update(_edits(1)[0]))
    harness.rooms.leave(room, first)
    await asyncio.sleep(0.1)  # the unload is now waiting for the commit that keeps failing
    second = _editor("stuck")
    # A join held behind the failing commit would wait for ever: any deadline shows it.
    rejoined = await asyncio.wait_for(harness.rooms.join(second), 30)
    assert rejoined is room and "stuck" in harness.rooms.rooms
    harness.store.failing = set()
    await asyncio.wait_for(room.all_saved(), 30)
    assert len(await harness.store.updates("stuck")) == 1


class DeliveringWhileLoading(SqlUpdateStore):
    """Another process's messages arrive while this one is still loading the document."""

    rooms: RoomManager
    messages: list[BusMessage]

    async def load(self, document_id: str) -> StoredDocument | None:
        stored = await super().load(document_id)
        self.rooms.deliver(document_id, self.messages)  # the room does not exist yet
        return stored


class QuietBus(LocalBus):
    published: list[tuple[str, BusKind, bytes]]

    def publish(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        self.published.append((document_id, kind, payload))


async def test_messages_from_the_bus_while_a_room_loads_are_applied_once_it_exists(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    store = DeliveringWhileLoading(engine)
    bus = QuietBus()
    bus.published = []
    committer = GroupCommitter(store, window_seconds=0.001)
    rooms = RoomManager(store, committer, grace_seconds=0.0, compact_every=5, bus=bus)
    store.rooms = rooms
    early, later = _edits(2)
    store.messages = [
        BusMessage(BusKind.UPDATE, early),
        BusMessage(BusKind.LOCK, b"Read-only: this DPIA is approved"),
    ]
    try:
        async with running(committer.run, rooms.run):
            await store.create_document("late", "alice")
            room = await rooms.open("late", create_as=None)
            assert _text(room.doc) == "0;"
            assert room.read_only == "Read-only: this DPIA is approved"
            # Unlocking here is published for the other processes, and followed here.
            store.messages = []
            rooms.set_read_only("late", None)
            assert room.read_only is None
            assert bus.published == [("late", BusKind.LOCK, b"")]
            room.apply_remote(later)
            assert _text(room.doc) == "1;0;"
    finally:
        await engine.dispose()


def _moved(client_id: int, clock: int) -> bytes:
    entry = protocol.AwarenessEntry(client_id, clock, f'{{"cursor":{clock}}}')
    return protocol.awareness(protocol.encode_awareness([entry]))


def _published_awareness(bus: QuietBus) -> list[list[protocol.AwarenessEntry]]:
    return [
        sorted(protocol.parse_awareness(payload), key=lambda e: e.client_id)
        for _, kind, payload in bus.published
        if kind is BusKind.AWARENESS
    ]


@contextlib.asynccontextmanager
async def _rooms_on_a_bus(
    database_url: str, **options: Any
) -> AsyncIterator[tuple[RoomManager, QuietBus]]:
    """Running rooms of one process whose bus keeps what it publishes."""
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    bus = QuietBus()
    bus.published = []
    committer = GroupCommitter(SqlUpdateStore(engine), window_seconds=0.001)
    rooms = RoomManager(SqlUpdateStore(engine), committer, compact_every=5, bus=bus, **options)
    try:
        async with running(committer.run, rooms.run):
            yield rooms, bus
    finally:
        await engine.dispose()


async def test_awareness_of_one_tick_goes_to_other_processes_as_one_message_of_latest_states(
    database_url: str,
) -> None:
    async with _rooms_on_a_bus(database_url, grace_seconds=60) as (rooms, bus):
        ann, bob = _editor("bus-aw"), _editor("bus-aw")
        room = await rooms.join(ann)
        room.join(bob)
        room.receive(ann, _moved(1, 1))  # the room was quiet: at once
        assert len(_published_awareness(bus)) == 1
        for clock in (2, 3, 4):
            room.receive(ann, _moved(1, clock))
            room.receive(bob, _moved(2, clock))
        assert len(_published_awareness(bus)) == 1  # the rest waits for the tick
        await until(lambda: len(_published_awareness(bus)) == 2, "the tick's bus message")
        assert _published_awareness(bus)[1] == [
            protocol.AwarenessEntry(1, 4, '{"cursor":4}'),
            protocol.AwarenessEntry(2, 4, '{"cursor":4}'),
        ]
        rooms.leave(room, bob)
        await until(lambda: len(_published_awareness(bus)) == 3, "bob's removal")
        assert _published_awareness(bus)[2] == [protocol.AwarenessEntry(2, 5, "null")]
        await until(lambda: room._awareness_window is None, "a quiet tick")


async def test_removals_waiting_for_the_tick_reach_other_processes_when_the_room_unloads(
    database_url: str,
) -> None:
    async with _rooms_on_a_bus(
        database_url,
        grace_seconds=0.0,
        awareness_tick_seconds=3600,  # the tick never ends within this test
    ) as (rooms, bus):
        ann = _editor("bus-leave")
        room = await rooms.join(ann)
        room.receive(ann, _moved(1, 1))
        room.receive(ann, _moved(1, 2))
        assert _published_awareness(bus) == [[protocol.AwarenessEntry(1, 1, '{"cursor":1}')]]
        rooms.leave(room, ann)
        await until(lambda: "bus-leave" not in rooms.rooms, "the room unloading")
        assert _published_awareness(bus)[1:] == [[protocol.AwarenessEntry(1, 3, "null")]]


def _answer(peer: FakePeer) -> bytes:
    (answer,) = [f for f in peer.frames if protocol.is_sync_step2(f)]
    return answer


async def test_clients_asking_the_same_share_one_answer_until_the_document_changes(
    harness: Harness,
) -> None:
    writer = _editor("crowd")
    room = await harness.rooms.join(writer)
    edits = _edits(40)
    for update in edits:
        room.receive(writer, protocol.sync_update(update))
    half: Doc[Any] = Doc()
    for update in edits[:20]:
        half.apply_update(update)
    fresh = [_editor("crowd") for _ in range(3)]
    behind = [_editor("crowd") for _ in range(2)]
    encodings = room.full_encodings
    for peer in fresh:
        room.join(peer)
        room.receive(peer, protocol.sync_step1(b"\x00"))
    for peer in behind:
        room.join(peer)
        room.receive(peer, protocol.sync_step1(half.get_state()))
    assert room.full_encodings == encodings + 1, "the whole state encoded once for three"
    first = _answer(fresh[0])
    assert all(_answer(peer) is first for peer in fresh), "one bytes object for all"
    assert _answer(behind[0]) is _answer(behind[1])
    for peer, whole in ((fresh[0], Doc()), (behind[0], half)):
        update = _answer(peer)[protocol.sync_step2_header_length(_answer(peer)) :]
        whole.apply_update(update)
        assert _text(whole) == _text(room.doc), "each answer completes what the client had"

    editor: Doc[Any] = Doc()
    editor.apply_update(room.full_state())
    before = editor.get_state()
    editor.get("t", type=Text).insert(0, "later,")
    room.receive(writer, protocol.sync_update(editor.get_update(before)))
    later = _editor("crowd")
    room.join(later)
    room.receive(later, protocol.sync_step1(b"\x00"))
    assert room.full_encodings == encodings + 2, "a new version is encoded again"
    assert _answer(later) is not first
    assert room.full_state() == _answer(later)[protocol.sync_step2_header_length(_answer(later)) :]
    await room.all_saved()


async def test_the_guard_is_built_once_what_the_peers_were_sent_has_left(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room_module, "GUARD_PREPARE_DELAY_SECONDS", 0.02)
    rooms = RoomManager(
        harness.store,
        harness.committer,
        grace_seconds=60.0,
        compact_every=5,
        limits=Limits(field_bytes=1 << 20, document_bytes=1 << 24),
    )
    peer = _editor("guarded")
    room = await rooms.join(peer)
    assert room.guard is None and not room.built, "the guard comes with the document"
    peer.unsent = 1 << 20  # its answer still in its transport
    room.receive(peer, protocol.sync_step1(b"\x00"))
    await until(lambda: room.built, "the document is built once the client is answered")
    assert room.guard is not None
    slow = asyncio.get_running_loop().time() + 0.3
    await until(lambda: asyncio.get_running_loop().time() > slow, "some delays passed")
    assert not room.guard.prepared, "not built while an answer is being written"
    peer.unsent = 0
    await until(lambda: room.guard is not None and room.guard.prepared, "the guard is built")
    room.close()


async def test_kept_answers_are_bounded_and_the_answer_to_fresh_pages_stays_longest(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(answers_module, "ANSWERS_KEPT", 2)
    writer = _editor("bounded")
    room = await harness.rooms.join(writer)
    edits = _edits(12)
    for update in edits:
        room.receive(writer, protocol.sync_update(update))
    fresh = _editor("bounded")
    room.join(fresh)
    room.receive(fresh, protocol.sync_step1(b"\x00"))
    behind = []
    for count in (3, 6, 9):
        partial: Doc[Any] = Doc()
        for update in edits[:count]:
            partial.apply_update(update)
        peer = _editor("bounded")
        room.join(peer)
        room.receive(peer, protocol.sync_step1(partial.get_state()))
        behind.append(peer)
    assert len(room.answers._answers) == 2, "no more than ANSWERS_KEPT"
    again = _editor("bounded")
    room.join(again)
    room.receive(again, protocol.sync_step1(b"\x00"))
    assert _answer(again) is _answer(fresh), "fresh pages' answer outlived the others"
    assert room.full_encodings == 1
    await room.all_saved()
