"""The SQL update store on SQLite and PostgreSQL: the same migrations, the same behaviour."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pycrdt import Doc, Text
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.storage.database import create_engine, migrate
from server.storage.models import FULL_TEXT_OBJECTS, Base
from server.storage.updates import SNAPSHOTS_KEPT, SqlUpdateStore
from tests.support.updates import edits, migrated, records

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated(database_url) as engine:
        yield engine


def _text_of(snapshot: bytes | None, tail: list[bytes]) -> str:
    doc: Doc[Any] = Doc()
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
    updates = edits(30)
    await store.append(records("d", updates[:10]))
    await store.append(records("d", updates[10:], first_seq=11))
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
    updates = edits(4)
    await store.append(records("d", updates[:2]))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.append(records("d", updates[2:], first_seq=2))
    assert len(await store.updates("d")) == 2


async def test_compaction_snapshot_plus_tail_equals_the_whole_log(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = edits(100)
    expected = "".join(f"{i};" for i in range(100))
    seq = 0
    for chunk in range(4):
        batch = updates[chunk * 25 : (chunk + 1) * 25]
        await store.append(records("d", batch, first_seq=seq + 1))
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
    for i, update in enumerate(edits(5)):
        await store.append(records("d", [update], first_seq=i + 1))
        await store.compact("d")
    async with engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(DocumentSnapshot))
    assert count == SNAPSHOTS_KEPT


async def test_load_reads_the_tail_after_the_latest_snapshot_only(engine: AsyncEngine) -> None:
    store = SqlUpdateStore(engine)
    await store.create_document("d", "alice")
    updates = edits(20)
    await store.append(records("d", updates[:15]))
    await store.compact("d")
    await store.append(records("d", updates[15:], first_seq=16))
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
    updates = edits(160)
    try:

        async def write(index: int) -> None:
            mine = updates[index::4]
            for start in range(0, len(mine), 5):
                batch = records("shared", mine[start : start + 5])
                batch += records("other", mine[start : start + 1])
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
    updates = edits(40)
    try:

        async def write(index: int, order: list[str]) -> None:
            for start in range(0, len(updates), 2):
                batch = [r for name in order for r in records(name, updates[start : start + 2])]
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
    updates = edits(8)
    await alone.append(records("d", updates[:5]))
    assert (await _counters(engine))["d"] == 0
    shared = SqlUpdateStore(engine, assign_seq=True)
    await shared.append(records("d", updates[5:]))
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
    updates = edits(3)
    with pytest.raises(Exception, match=r"(?i)null|foreign|no document"):
        await store.append(records("d", updates[:2]) + records("gone", updates[2:]))
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
                for seq, update in enumerate(edits(count), start=1):
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
        await store.append(records("long", edits(13)[12:]))
        assert [r.seq for r in await store.updates("long")][-2:] == [12, 13]
    finally:
        await engine.dispose()
