"""The SQL update store on SQLite and PostgreSQL: the same migrations, the same behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pycrdt import Doc, Text
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.documents import UpdateRecord
from server.storage import database
from server.storage.database import create_engine, migrate, writer_turn
from server.storage.models import FULL_TEXT_OBJECTS, Base, DocumentUpdate
from server.storage.updates import SNAPSHOTS_KEPT, SqlUpdateStore

pytestmark = pytest.mark.asyncio


@contextlib.asynccontextmanager
async def _migrated(url: str) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with _migrated(database_url) as engine:
        yield engine


def _edits(count: int) -> list[bytes]:
    doc = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text += f"{i};"
    return updates


def _records(document_id: str, updates: list[bytes], first_seq: int = 1) -> list[UpdateRecord]:
    now = datetime.now(UTC)
    return [
        UpdateRecord(document_id, first_seq + i, u, "alice", "api", "test", now)
        for i, u in enumerate(updates)
    ]


def _text_of(snapshot: bytes | None, tail: list[bytes]) -> str:
    doc = Doc()
    for update in ([snapshot] if snapshot else []) + tail:
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    def compare(connection: object) -> list[object]:
        context = MigrationContext.configure(
            connection,  # type: ignore[arg-type]
            opts={"include_name": lambda name, *_: name not in FULL_TEXT_OBJECTS},
        )
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        differences = await connection.run_sync(compare)
    assert differences == []


async def test_create_document_is_idempotent(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    assert await store.create_document("d", "alice") is True
    assert await store.create_document("d", "bob") is False
    assert await store.load("unknown") is None


async def test_appended_updates_load_in_order_with_their_attribution(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = _edits(30)
    await store.append(_records("d", updates[:10]))
    await store.append(_records("d", updates[10:], first_seq=11))
    loaded = await store.load("d")
    assert loaded is not None
    assert loaded.snapshot is None and loaded.last_seq == 30
    assert _text_of(None, list(loaded.tail)) == "".join(f"{i};" for i in range(30))
    log = await store.updates("d")
    assert [r.seq for r in log] == list(range(1, 31))
    assert {(r.actor, r.channel, r.origin) for r in log} == {("alice", "api", "test")}


async def test_a_duplicate_sequence_number_is_refused_whole(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = _edits(4)
    await store.append(_records("d", updates[:2]))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.append(_records("d", updates[2:], first_seq=2))
    assert len(await store.updates("d")) == 2


async def test_compaction_snapshot_plus_tail_equals_the_whole_log(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = _edits(100)
    expected = "".join(f"{i};" for i in range(100))
    seq = 0
    for chunk in range(4):
        batch = updates[chunk * 25 : (chunk + 1) * 25]
        await store.append(_records("d", batch, first_seq=seq + 1))
        seq += len(batch)
        assert await store.compact("d") == seq
        loaded = await store.load("d")
        assert loaded is not None
        assert loaded.snapshot_seq == seq and list(loaded.tail) == []
        prefix = "".join(f"{i};" for i in range(seq))
        assert _text_of(loaded.snapshot, []) == prefix
    assert await store.compact("d") is None  # nothing new: no snapshot
    assert len(await store.updates("d")) == 100  # the log is kept: it is the history
    loaded = await store.load("d")
    assert loaded is not None and _text_of(loaded.snapshot, list(loaded.tail)) == expected


async def test_compaction_keeps_only_the_latest_snapshots(engine: AsyncEngine) -> None:
    from sqlalchemy import func, select

    from server.storage.models import DocumentSnapshot

    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    for i, update in enumerate(_edits(5)):
        await store.append(_records("d", [update], first_seq=i + 1))
        await store.compact("d")
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(DocumentSnapshot))
    assert count == SNAPSHOTS_KEPT


async def test_load_reads_the_tail_after_the_latest_snapshot_only(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = _edits(20)
    await store.append(_records("d", updates[:15]))
    await store.compact("d")
    await store.append(_records("d", updates[15:], first_seq=16))
    loaded = await store.load("d")
    assert loaded is not None
    assert (loaded.snapshot_seq, len(loaded.tail), loaded.last_seq) == (15, 5, 20)
    assert _text_of(loaded.snapshot, list(loaded.tail)) == "".join(f"{i};" for i in range(20))


async def test_writers_in_several_processes_get_one_gap_free_sequence(
    engine: AsyncEngine, database_url: str
) -> None:
    """With ``assign_seq`` each writer numbers after the last committed row, whoever wrote it.

    Separate engines stand for separate processes: every one believes its rows start at 1.
    """
    if engine.dialect.name != "postgresql":
        pytest.skip("several processes share PostgreSQL; SQLite serves one process")
    engines = [create_engine(database_url, pool_size=2) for _ in range(4)]
    stores = [SqlUpdateStore(e, assign_seq=True) for e in engines]
    await stores[0].create_document("shared", "alice")
    await stores[0].create_document("other", "alice")
    updates = _edits(160)
    try:

        async def write(index: int) -> None:
            mine = updates[index::4]
            for start in range(0, len(mine), 5):
                batch = _records("shared", mine[start : start + 5])
                batch += _records("other", mine[start : start + 1])
                await stores[index].append(batch)

        await asyncio.gather(*(write(i) for i in range(4)))
    finally:
        for e in engines:
            await e.dispose()
    store = SqlUpdateStore(engine)
    log = await store.updates("shared")
    assert [r.seq for r in log] == list(range(1, 161))
    assert [r.seq for r in await store.updates("other")] == list(range(1, 33))
    loaded = await store.load("shared")
    assert loaded is not None
    assert _text_of(None, list(loaded.tail)) == "".join(f"{i};" for i in range(160))


async def _counters(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, last_seq FROM documents"))
        return {row.id: int(row.last_seq) for row in rows}


async def test_writers_that_meet_documents_in_opposite_orders_neither_deadlock_nor_gap(
    engine: AsyncEngine, database_url: str
) -> None:
    """Batches of several documents, listed in opposite orders by two writers, bump the
    documents' counters in one order: no deadlock, each log gap-free, each counter at its
    log's last ``seq``."""
    if engine.dialect.name != "postgresql":
        pytest.skip("several processes share PostgreSQL; SQLite serves one process")
    engines = [create_engine(database_url, pool_size=3) for _ in range(2)]
    stores = [SqlUpdateStore(e, assign_seq=True) for e in engines]
    names = [f"doc{i}" for i in range(6)]
    for name in names:
        await stores[0].create_document(name, "alice")
    updates = _edits(40)
    try:

        async def write(index: int, order: list[str]) -> None:
            for start in range(0, len(updates), 2):
                batch = [r for name in order for r in _records(name, updates[start : start + 2])]
                await stores[index].append(batch)

        async with asyncio.timeout(60):  # a deadlock would be refused by PostgreSQL
            await asyncio.gather(
                write(0, names), write(1, names[::-1]), write(0, names[::2] + names[1::2])
            )
    finally:
        for e in engines:
            await e.dispose()
    store = SqlUpdateStore(engine)
    for name in names:
        log = await store.updates(name)
        assert [r.seq for r in log] == list(range(1, 121))
    assert await _counters(engine) == dict.fromkeys(names, 120)


async def test_a_counter_behind_the_log_is_set_again_from_it(engine: AsyncEngine) -> None:
    """One process numbers rows itself and leaves the counter be; when several processes
    take over, the first writer finds its numbers taken, sets the counter from the log and
    numbers after it."""
    alone = SqlUpdateStore(engine)
    await alone.create_document("d", "alice")
    updates = _edits(8)
    await alone.append(_records("d", updates[:5]))
    assert (await _counters(engine))["d"] == 0
    shared = SqlUpdateStore(engine, assign_seq=True)
    await shared.append(_records("d", updates[5:]))
    assert [r.seq for r in await alone.updates("d")] == list(range(1, 9))
    assert (await _counters(engine))["d"] == 8
    loaded = await alone.load("d")
    assert loaded is not None
    assert _text_of(None, list(loaded.tail)) == "".join(f"{i};" for i in range(8))


async def test_rows_of_a_missing_document_fail_the_whole_numbered_batch(
    engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(engine, assign_seq=True)
    await store.create_document("d", "alice")
    updates = _edits(3)
    with pytest.raises(Exception, match=r"(?i)null|foreign|no document"):
        await store.append(_records("d", updates[:2]) + _records("gone", updates[2:]))
    assert await store.updates("d") == []
    assert (await _counters(engine))["d"] == 0


async def test_the_counter_migration_sets_each_document_s_counter_from_its_log(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url, "0022")
    engine = create_engine(database_url)
    try:
        now = datetime.now(UTC)
        async with engine.begin() as connection:
            for name, count in (("empty", 0), ("short", 3), ("long", 12)):
                await connection.execute(
                    text("INSERT INTO documents (id, created_at, created_by) VALUES (:d, :t, 'a')"),
                    {"d": name, "t": now},
                )
                for seq, update in enumerate(_edits(count), start=1):
                    await connection.execute(
                        text(
                            "INSERT INTO document_updates "
                            '(document_id, seq, "update", actor, channel, origin, created_at) '
                            "VALUES (:d, :s, :u, 'a', 'api', 'test', :t)"
                        ),
                        {"d": name, "s": seq, "u": update, "t": now},
                    )
        await asyncio.to_thread(migrate, database_url)
        assert await _counters(engine) == {"empty": 0, "short": 3, "long": 12}
        store = SqlUpdateStore(engine, assign_seq=True)
        await store.append(_records("long", _edits(13)[12:]))
        assert [r.seq for r in await store.updates("long")][-2:] == [12, 13]
    finally:
        await engine.dispose()


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
    async with _migrated(sqlite_url) as engine:
        yield engine


async def test_one_process_on_sqlite_appends_without_a_statement_through_the_engine(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    through_engine: list[str] = []
    event.listen(
        sqlite_engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: through_engine.append(statement),
    )
    try:
        await store.append(_records("d", _edits(5)))
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
    update = _edits(1)[0]
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


async def test_a_failed_log_batch_leaves_nothing_and_the_next_one_commits(
    sqlite_engine: AsyncEngine,
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    updates = _edits(3)
    try:
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await store.append(
                _records("d", updates[:1]) + _records("no such document", updates[1:2], 2)
            )
        await store.append(_records("d", updates[2:]))
        assert [r.seq for r in await store.updates("d")] == [1]
    finally:
        await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await store.append(_records("d", updates[:1], first_seq=2))


@pytest.mark.parametrize("ending", ["closed", "dropped"])
async def test_the_log_s_thread_ends_when_its_store_is_closed_or_dropped(
    sqlite_engine: AsyncEngine, ending: str
) -> None:
    store = SqlUpdateStore(sqlite_engine)
    await store.create_document("d", "alice")
    before = set(threading.enumerate())
    await store.append(_records("d", _edits(1)))
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
