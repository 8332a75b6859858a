"""Change events: one person's burst of edits to one field is one event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Array, Doc, Map, XmlElement, XmlFragment, XmlText

from server.domain.access import Channel, Grant, Role
from server.domain.changes import ChangeEvent
from server.domain.documents import UpdateRecord
from server.domain.templates import load_template, seed_update
from server.realtime import protocol
from server.realtime.changes import ChangeRecorder
from server.realtime.committer import GroupCommitter
from server.realtime.rooms import RoomManager
from server.storage.database import create_engine, migrate
from server.storage.events import SqlChangeEvents
from server.storage.updates import SqlUpdateStore
from tests.support.rooms import FakePeer
from tests.support.services import running

pytestmark = pytest.mark.asyncio
# Long enough that a loaded machine stalling this process between two keystrokes does not
# split one burst into two events; the tests wait for events rather than for this long.
QUIET = 1.0
PAUSE = 0.03  # a pause in typing, far shorter than the quiet period


async def _until(condition: Callable[[], bool], timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@dataclass
class Setup:
    rooms: RoomManager
    store: SqlUpdateStore
    events: list[ChangeEvent]
    recorded: SqlChangeEvents
    recorder: ChangeRecorder


@pytest_asyncio.fixture
async def setup(database_url: str) -> AsyncIterator[Setup]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    store = SqlUpdateStore(engine)
    await store.create_document("dpia", "test")
    await store.append(
        [UpdateRecord("dpia", 1, seed_update(load_template()), "t", "api", "t", datetime.now(UTC))]
    )
    events: list[ChangeEvent] = []
    recorded = SqlChangeEvents(engine)
    recorder = ChangeRecorder(recorded.record)

    def on_change(event: ChangeEvent) -> None:
        events.append(event)
        recorder.submit(event)

    committer = GroupCommitter(store, window_seconds=0.001)
    rooms = RoomManager(
        store,
        committer,
        grace_seconds=0.0,
        compact_every=1000,
        on_change=on_change,
        quiet_seconds=QUIET,
    )
    try:
        async with running(committer.run, rooms.run, recorder.run):
            yield Setup(rooms, store, events, recorded, recorder)
    finally:
        await engine.dispose()


def _peer(name: str) -> FakePeer:
    return FakePeer(
        Grant(name, "dpia", Role.EDITOR, Channel.BROWSER, 1e12), wants_saved=False, id=name
    )


class Typist:
    """A client document producing one update per keystroke into a rich-text field."""

    def __init__(self, room_doc: Doc[Any], path: str) -> None:
        self.doc: Doc[Any] = Doc()
        self.doc.apply_update(room_doc.get_update())
        self.updates: list[bytes] = []
        self.doc.observe(lambda event: self.updates.append(event.update))
        fragment = self.doc.get(f"field:{path}", type=XmlFragment)
        paragraph = XmlElement("paragraph")
        fragment.children.append(paragraph)
        self.text = XmlText()
        paragraph.children.append(self.text)

    def keystroke(self, character: str) -> bytes:
        self.text.insert(len(self.text), character)
        return self.updates[-1]


async def test_two_hundred_keystrokes_by_one_person_are_one_event(setup: Setup) -> None:
    ann = _peer("user:1")
    room = await setup.rooms.join(ann)
    typist = Typist(room.doc, "need.aims")
    for update in typist.updates:
        room.receive(ann, protocol.sync_update(update))
    for i in range(200):
        room.receive(ann, protocol.sync_update(typist.keystroke("abcdefghij"[i % 10])))
        if i % 20 == 0:
            await asyncio.sleep(PAUSE)  # pauses, but never as long as the quiet period
    assert setup.events == []
    await _until(lambda: bool(setup.events))
    (event,) = setup.events
    assert (event.actor, event.channel, event.field, event.row) == (
        "user:1",
        "browser",
        "need.aims",
        None,
    )
    assert event.edits >= 200 and event.last_at > event.first_at
    await _until(lambda: setup.recorder.recorded >= 1)
    assert await setup.recorded.of_document("dpia") == [event]


async def test_people_fields_and_rows_each_get_their_own_event(setup: Setup) -> None:
    ann, bob = _peer("user:1"), _peer("user:2")
    room = await setup.rooms.join(ann)
    room.join(bob)
    ann_typist = Typist(room.doc, "need.aims")
    for update in ann_typist.updates:
        room.receive(ann, protocol.sync_update(update))
    bob_doc: Doc[Any] = Doc()
    bob_doc.apply_update(room.doc.get_update())
    bob_updates: list[bytes] = []
    bob_doc.observe(lambda event: bob_updates.append(event.update))
    with bob_doc.transaction():
        bob_doc.get("values", type=Map)["screening.outcome"] = "required"
    bob_doc.get("table:risks.register", type=Array).append(Map({"id": "x1", "ref": "R1"}))
    bob_doc.get("table:risks.register", type=Array)[0]["title"] = "Re-identification"
    room.receive(ann, protocol.sync_update(ann_typist.keystroke("x")))
    for update in bob_updates:
        room.receive(bob, protocol.sync_update(update))
    await _until(lambda: len(setup.events) >= 3)
    seen = sorted((e.actor, e.field, e.row) for e in setup.events)
    assert seen == [
        ("user:1", "need.aims", None),
        ("user:2", "risks.register", "R1"),
        ("user:2", "screening.outcome", None),
    ]


async def test_closing_the_room_emits_what_is_pending(setup: Setup) -> None:
    ann = _peer("user:1")
    room = await setup.rooms.join(ann)
    typist = Typist(room.doc, "processing.nature")
    for update in typist.updates:
        room.receive(ann, protocol.sync_update(update))
    assert setup.events == []
    setup.rooms.close_trackers()
    assert [e.field for e in setup.events] == ["processing.nature"]


async def test_loading_history_emits_nothing(setup: Setup) -> None:
    room = await setup.rooms.join(_peer("user:1"))
    await asyncio.sleep(QUIET * 1.5)
    assert room.tracker is not None and setup.events == []
