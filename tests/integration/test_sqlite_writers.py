"""SQLite's writers: this process's and other processes' turns to write, and the update log
appended through a connection of its own (decisions 145, 149, 154)."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.documents import UpdateRecord
from server.storage import database
from server.storage.database import create_engine, migrate, writer_turn
from server.storage.models import DocumentUpdate
from server.storage.updates import SqlUpdateStore
from tests.support.updates import edits, migrated, records

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated(database_url) as engine:
        yield engine


async def test_this_process_s_sqlite_writers_take_turns_and_postgresql_ones_do_not_wait(
    engine: AsyncEngine,
) -> None:
    """A write transaction waits for its turn before it begins on SQLite (rather than
    polling SQLite's lock); on PostgreSQL, writers run side by side."""
    store = SqlUpdateStore(engine)
    order: list[str] = []
    event.listen(engine.sync_engine, "begin", lambda _: order.append("begin"))
    event.listen(engine.sync_engine, "commit", lambda _: order.append("commit"))
    holding = asyncio.Event()

    async def long_writer() -> None:
        async with writer_turn(engine), engine.begin():
            order.append("first writes")
            holding.set()
            await asyncio.sleep(0.3)

    first = asyncio.create_task(long_writer())
    await holding.wait()
    assert await store.create_document("turns", "tester")
    await first
    if engine.dialect.name == "sqlite":
        assert order == ["begin", "first writes", "commit", "begin", "commit"]
    else:
        assert order == ["begin", "first writes", "begin", "commit", "commit"]


async def test_a_writer_kept_waiting_for_its_turn_goes_ahead_without_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No mistake in who takes turns can hang the process: SQLite's lock still applies."""
    monkeypatch.setattr(database, "TURN_WAIT_SECONDS", 0.2)
    await asyncio.to_thread(migrate, sqlite_url)
    engine = create_engine(sqlite_url)
    try:
        holding, release = asyncio.Event(), asyncio.Event()

        async def stuck() -> None:
            async with writer_turn(engine):
                holding.set()
                await release.wait()

        holder = asyncio.create_task(stuck())
        await holding.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(30):  # it goes ahead rather than wait for ever
            assert await SqlUpdateStore(engine).create_document("impatient", "tester")
        assert loop.time() - started >= 0.2  # after waiting its turn for a while
        release.set()
        await holder
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def sqlite_engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated(sqlite_url) as engine:
        yield engine


def _statements_through(engine: AsyncEngine) -> list[str]:
    """The SQL of every statement run through ``engine`` from now on."""
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append(statement),
    )
    return statements


async def test_one_process_on_sqlite_appends_without_a_statement_through_the_engine(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    through_engine = _statements_through(sqlite_engine)
    try:
        await store.append(records("d", edits(5)))
    finally:
        await store.close()
    assert through_engine == []
    assert [r.seq for r in await SqlUpdateStore(sqlite_engine).updates("d")] == [1, 2, 3, 4, 5]


async def test_the_log_s_own_connection_writes_rows_as_the_engine_does(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    at = datetime(2026, 12, 3, 9, 30, 15, 123456, tzinfo=UTC)
    update = edits(1)[0]
    await store.append([UpdateRecord("d", 1, update, "alice", "email", "reply:1", at)])
    await store.close()
    async with sqlite_engine.begin() as connection:  # the same row, written by SQLAlchemy
        await connection.execute(
            insert(DocumentUpdate),
            [
                dict(
                    document_id="d",
                    seq=2,
                    update=update,
                    actor="alice",
                    channel="email",
                    origin="reply:1",
                    created_at=at,
                )
            ],
        )
        rows = (
            await connection.execute(
                text(
                    'SELECT seq, "update", actor, channel, origin, created_at, '
                    "typeof(created_at) FROM document_updates ORDER BY seq"
                )
            )
        ).all()
    assert rows[0][1:] == rows[1][1:]
    log = await SqlUpdateStore(sqlite_engine).updates("d")
    assert [r.created_at for r in log] == [log[1].created_at] * 2
    assert log[0].created_at.replace(tzinfo=UTC) == at


async def test_a_document_loads_through_the_log_s_connection_as_through_the_engine(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    through_engine = SqlUpdateStore(sqlite_engine, assign_seq=True)  # SQLAlchemy's path
    updates = edits(9)
    for document_id in ("empty", "tail", "both"):
        await store.create_document(document_id, "alice")
    await store.append(records("tail", updates[:3]))
    await store.append(records("both", updates[:6]))
    await store.compact("both")
    await store.append(records("both", updates[6:], first_seq=7))
    statements = _statements_through(sqlite_engine)
    try:
        loaded = {d: await store.load(d) for d in ("empty", "tail", "both", "absent")}
    finally:
        await store.close()
    assert statements == [], "read on the log's own connection"
    for document_id, stored in loaded.items():
        assert stored == await through_engine.load(document_id), document_id
    both = loaded["both"]
    assert both is not None and both.snapshot_seq == 6 and len(both.tail) == 3
    assert both.last_seq == 9 and loaded["absent"] is None


async def test_a_failed_log_batch_leaves_nothing_and_the_next_one_commits(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    updates = edits(3)
    try:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await store.append(
                records("d", updates[:1]) + records("no such document", updates[1:2], 2)
            )
        await store.append(records("d", updates[2:]))
        assert [r.seq for r in await store.updates("d")] == [1]
    finally:
        await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.append(records("d", updates[:1], first_seq=2))


@pytest.mark.parametrize("ending", ["closed", "dropped"])
async def test_the_log_s_thread_ends_when_its_store_is_closed_or_dropped(
    sqlite_engine: AsyncEngine, ending: str
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    before = set(threading.enumerate())
    await store.append(records("d", edits(1)))
    (thread,) = set(threading.enumerate()) - before
    if ending == "closed":
        await store.close()
    else:
        del store
        gc.collect()
    await asyncio.to_thread(thread.join, 30)
    assert not thread.is_alive()


async def test_a_writer_waits_for_another_process_s_turn_and_is_handed_it_on_release(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding ``<database>-turn`` (here: another open file description,
    which ``flock`` treats alike) keeps a writer from beginning; its release hands the turn
    over with nothing polling."""
    await asyncio.to_thread(migrate, sqlite_url)
    engine = create_engine(sqlite_url)
    other = os.open(f"{engine.url.database}-turn", os.O_RDWR | os.O_CREAT, 0o600)
    asked = threading.Event()
    flock = fcntl.flock

    def watched_flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:  # the blocking wait, in a thread
            asked.set()
        flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", watched_flock)
    order: list[str] = []
    event.listen(engine.sync_engine, "commit", lambda _: order.append("commit"))
    try:
        flock(other, fcntl.LOCK_EX)
        writing = asyncio.create_task(SqlUpdateStore(engine).create_document("waits", "tester"))
        assert await asyncio.to_thread(asked.wait, 30)  # it is waiting in flock now
        assert not writing.done() and order == []
        order.append("released")
        flock(other, fcntl.LOCK_UN)
        async with asyncio.timeout(30):
            assert await writing
        assert order == ["released", "commit"]
        flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and the writer gave the turn back
    finally:
        os.close(other)
        await engine.dispose()


async def test_a_writer_that_stops_waiting_for_another_process_s_turn_gives_it_back(
    sqlite_url: str,
) -> None:
    """A wait given up (cancelled here) leaves a thread in ``flock``; when it gets the lock
    it lets go at once, so the other process is not locked out for ever."""
    await asyncio.to_thread(migrate, sqlite_url)
    engine = create_engine(sqlite_url)
    other = os.open(f"{engine.url.database}-turn", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        entered = asyncio.Event()

        async def writer() -> None:
            async with writer_turn(engine):
                entered.set()

        waiting = asyncio.create_task(writer())
        for _ in range(100):  # until the writer is past the free-lock attempt
            await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not entered.is_set()
        fcntl.flock(other, fcntl.LOCK_UN)

        def taken_again() -> bool:
            for _ in range(3000):
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    threading.Event().wait(0.01)
            return False

        assert await asyncio.to_thread(taken_again)
        fcntl.flock(other, fcntl.LOCK_UN)
        async with asyncio.timeout(30):  # and this process can write again
            assert await SqlUpdateStore(engine).create_document("after", "tester")
    finally:
        os.close(other)
        await engine.dispose()
