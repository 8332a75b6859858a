"""The SQL implementation of the update store: log, snapshots, compaction.

With several server processes writing one document (``assign_seq``), a process cannot
know the next ``seq``: ``append`` then numbers each document's rows after the last one
numbered, by bumping the document's counter (``documents.last_seq``) in the transaction
that inserts them. The counter's row lock makes writers of one document commit one after
another, so the committed log is always a gap-free prefix (what compaction relies on);
writers of different documents never wait for each other. On PostgreSQL the bump and the
insert are one statement, committed on its own: one round trip per group commit.

The counter is a cache of ``max(seq)``: one process alone numbers rows itself and leaves it
be. A writer whose numbers are taken (the primary key refuses them: the counter is behind,
for instance after running as one process) sets the counters of its batch from the log and
tries once more. It is never ahead: only rows it numbered move it, in the same transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.documents import StoredDocument, UpdateRecord
from server.storage.database import writer_turn
from server.storage.models import Document, DocumentSnapshot, DocumentUpdate
from server.storage.sqlite_log import SqliteLog

SNAPSHOTS_KEPT = 2

_documents = cast(Table, Document.__table__)
_updates = cast(Table, DocumentUpdate.__table__)
_snapshots = cast(Table, DocumentSnapshot.__table__)


# Loading a document: whether it exists, its latest snapshot, and the log after that
# (``after``: the snapshot's seq, or 0). Run by the engine, or by the SQLite log's own
# connection (server.storage.sqlite_log), which compiles them once.
_EXISTS = select(_documents.c.id).where(_documents.c.id == bindparam("document_id"))
_LATEST_SNAPSHOT = (
    select(_snapshots.c.seq, _snapshots.c.state)
    .where(_snapshots.c.document_id == bindparam("document_id"))
    .order_by(_snapshots.c.seq.desc())
    .limit(1)
)
_TAIL = (
    select(_updates.c.seq, _updates.c.update)
    .where(_updates.c.document_id == bindparam("document_id"), _updates.c.seq > bindparam("after"))
    .order_by(_updates.c.seq)
)


def _stored(
    document_id: str, snapshot: tuple[int, bytes] | None, rows: Sequence[tuple[int, bytes]]
) -> StoredDocument:
    """A loaded document from its latest snapshot (seq, state) and the log rows after it."""
    snapshot_seq = 0 if snapshot is None else snapshot[0]
    return StoredDocument(
        document_id=document_id,
        snapshot=None if snapshot is None else snapshot[1],
        snapshot_seq=snapshot_seq,
        tail=[update for _seq, update in rows],
        last_seq=rows[-1][0] if rows else snapshot_seq,
    )


# Rows arrive as parallel arrays; ``ordinal`` numbers each document's rows from 1 in order.
_NUMBER_AND_INSERT = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:documents AS text[]), CAST(:ordinals AS int[]), CAST(:updates AS bytea[]),
            CAST(:actors AS text[]), CAST(:channels AS text[]), CAST(:origins AS text[]),
            CAST(:times AS timestamptz[])
        ) AS b(document_id, ordinal, "update", actor, channel, origin, created_at)
    ),
    counts AS (SELECT document_id, count(*) AS n FROM batch GROUP BY document_id),
    locked AS MATERIALIZED (
        SELECT d.id FROM documents AS d JOIN counts AS c ON c.document_id = d.id
        ORDER BY d.id FOR NO KEY UPDATE OF d
    ),
    bumped AS (
        UPDATE documents AS d SET last_seq = d.last_seq + c.n
        FROM counts AS c, locked AS l
        WHERE d.id = c.document_id AND l.id = d.id
        RETURNING d.id, d.last_seq - c.n AS base
    ),
    inserted AS (
        INSERT INTO document_updates
            (document_id, seq, "update", actor, channel, origin, created_at)
        SELECT b.document_id, k.base + b.ordinal, b."update", b.actor, b.channel, b.origin,
            b.created_at
        FROM batch AS b LEFT JOIN bumped AS k ON k.id = b.document_id
    )
    SELECT id AS document_id, base FROM bumped
    """
)


class SqlUpdateStore:
    """Documents, their append-only update log and snapshots, in SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, assign_seq: bool = False) -> None:
        self._engine = engine
        self._assign_seq = assign_seq
        dialect = engine.dialect.name
        self._postgres = dialect == "postgresql"
        self._insert_ignore = pg_insert if dialect == "postgresql" else sqlite_insert
        # One process alone on a SQLite file appends and loads in one trip to a thread of
        # its own.
        self._log: SqliteLog | None = None
        path = engine.url.database if dialect == "sqlite" else None
        if path and not assign_seq and not path.startswith((":memory:", "file:")):
            self._log = SqliteLog(
                path, _updates, engine.dialect, loads=(_EXISTS, _LATEST_SNAPSHOT, _TAIL)
            )

    async def open(self) -> None:
        """Open what the store holds beside the engine (the log's own connection)."""
        if self._log is not None:
            await self._log.open()

    async def close(self) -> None:
        """Release what the store holds beside the engine (the log's own connection)."""
        if self._log is not None:
            await self._log.close()

    async def create_document(self, document_id: str, created_by: str) -> bool:
        statement = (
            self._insert_ignore(_documents)
            .values(id=document_id, created_at=datetime.now(UTC), created_by=created_by)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        async with writer_turn(self._engine), self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def exists(self, document_id: str) -> bool:
        async with self._engine.connect() as connection:
            found = await connection.scalar(
                select(_documents.c.id).where(_documents.c.id == document_id)
            )
        return found is not None

    async def load(self, document_id: str) -> StoredDocument | None:
        if self._log is not None:
            found = await self._log.load(document_id)
            return None if found is None else _stored(document_id, *found)
        async with self._engine.connect() as connection:
            if not await connection.scalar(_EXISTS, {"document_id": document_id}):
                return None
            row = (await connection.execute(_LATEST_SNAPSHOT, {"document_id": document_id})).first()
            snapshot = None if row is None else (int(row.seq), bytes(row.state))
            after = 0 if snapshot is None else snapshot[0]
            tail = (
                await connection.execute(_TAIL, {"document_id": document_id, "after": after})
            ).all()
        return _stored(document_id, snapshot, [(int(r.seq), bytes(r.update)) for r in tail])

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        if not records:
            return
        if self._log is not None:
            async with writer_turn(self._engine):
                await self._log.append(records)
            return
        rows = [
            {
                "document_id": r.document_id,
                "seq": r.seq,
                "update": r.update,
                "actor": r.actor,
                "channel": r.channel,
                "origin": r.origin,
                "created_at": r.created_at,
            }
            for r in records
        ]
        if not self._assign_seq:
            async with writer_turn(self._engine), self._engine.begin() as connection:
                await connection.execute(insert(_updates), rows)
            return
        try:
            await self._append_numbered(rows)
        except IntegrityError:
            # Numbers taken: the counters are behind the log. Set them from it, once.
            await self._reset_counters(sorted({str(row["document_id"]) for row in rows}))
            await self._append_numbered(rows)

    async def _append_numbered(self, rows: list[dict[str, Any]]) -> None:
        """Number each document's rows, in order, after its counter, and insert them."""
        by_document: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_document.setdefault(row["document_id"], []).append(row)
        if self._postgres:
            await self._append_numbered_postgres(rows, by_document)
            return
        async with writer_turn(self._engine), self._engine.begin() as connection:
            for document_id in sorted(by_document):
                document_rows = by_document[document_id]
                last = await connection.scalar(
                    update(_documents)
                    .where(_documents.c.id == document_id)
                    .values(last_seq=_documents.c.last_seq + len(document_rows))
                    .returning(_documents.c.last_seq)
                )
                if last is None:
                    raise LookupError(f"no document {document_id!r} to number rows of")
                start = int(last) - len(document_rows)
                for offset, row in enumerate(document_rows, start=1):
                    row["seq"] = start + offset
            await connection.execute(insert(_updates), rows)

    async def _append_numbered_postgres(
        self, rows: list[dict[str, Any]], by_document: dict[str, list[dict[str, Any]]]
    ) -> None:
        """One statement, committed on its own: lock the documents' rows in id order (two
        writers cannot deadlock), bump each counter by its number of rows, insert the rows
        after the old value. A row whose document does not exist gets no ``seq`` and fails
        the whole statement, as the foreign key would."""
        ordinals: list[int] = []
        seen: dict[str, int] = {}
        for row in rows:
            seen[row["document_id"]] = seen.get(row["document_id"], 0) + 1
            ordinals.append(seen[row["document_id"]])
        params = {
            "documents": [row["document_id"] for row in rows],
            "ordinals": ordinals,
            "updates": [row["update"] for row in rows],
            "actors": [row["actor"] for row in rows],
            "channels": [row["channel"] for row in rows],
            "origins": [row["origin"] for row in rows],
            "times": [row["created_at"] for row in rows],
        }
        async with self._engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            inserted = await connection.execute(_NUMBER_AND_INSERT, params)
        numbered = {r.document_id: int(r.base) for r in inserted}
        for document_id, document_rows in by_document.items():
            for offset, row in enumerate(document_rows, start=1):
                row["seq"] = numbered[document_id] + offset

    async def _reset_counters(self, document_ids: list[str]) -> None:
        """Set these documents' counters to at least their logs' last ``seq``."""
        logged = (
            select(func.coalesce(func.max(_updates.c.seq), 0))
            .where(_updates.c.document_id == _documents.c.id)
            .scalar_subquery()
        )
        highest = func.greatest if self._postgres else func.max
        async with writer_turn(self._engine), self._engine.begin() as connection:
            await connection.execute(
                update(_documents)
                .where(_documents.c.id.in_(document_ids))
                .values(last_seq=highest(_documents.c.last_seq, logged))
            )

    async def compact(self, document_id: str) -> int | None:
        stored = await self.load(document_id)
        if stored is None or not stored.tail:
            return None
        # Applying to a Doc is far faster than merge_updates (shared/peers.md).
        state = await asyncio.to_thread(lambda: stored.to_doc().get_update())
        async with writer_turn(self._engine), self._engine.begin() as connection:
            # Another process may have compacted at the same seq: same state, keep theirs.
            await connection.execute(
                self._insert_ignore(_snapshots)
                .values(
                    document_id=document_id,
                    seq=stored.last_seq,
                    state=state,
                    created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["document_id", "seq"])
            )
            kept = (
                select(_snapshots.c.seq)
                .where(_snapshots.c.document_id == document_id)
                .order_by(_snapshots.c.seq.desc())
                .limit(SNAPSHOTS_KEPT)
                .scalar_subquery()
            )
            oldest_kept = await connection.scalar(
                select(_snapshots.c.seq)
                .where(_snapshots.c.document_id == document_id, _snapshots.c.seq.in_(kept))
                .order_by(_snapshots.c.seq)
                .limit(1)
            )
            await connection.execute(
                delete(_snapshots).where(
                    _snapshots.c.document_id == document_id, _snapshots.c.seq < oldest_kept
                )
            )
        return stored.last_seq

    async def last_seqs(self, document_ids: Sequence[str]) -> dict[str, int]:
        """The sequence number each document's log has reached (``load(...).last_seq``
        without reading any update), for many documents at once; absent if none."""
        found: dict[str, int] = {}
        ids = list(dict.fromkeys(document_ids))
        async with self._engine.connect() as connection:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                for table in (_updates, _snapshots):
                    rows = await connection.execute(
                        select(table.c.document_id, func.max(table.c.seq))
                        .where(table.c.document_id.in_(batch))
                        .group_by(table.c.document_id)
                    )
                    for document_id, seq in rows:
                        found[document_id] = max(found.get(document_id, 0), int(seq))
        return found

    async def updates(self, document_id: str, upto_seq: int | None = None) -> list[UpdateRecord]:
        """The log of a document in order, up to and including ``upto_seq``."""
        query = (
            select(_updates).where(_updates.c.document_id == document_id).order_by(_updates.c.seq)
        )
        if upto_seq is not None:
            query = query.where(_updates.c.seq <= upto_seq)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            UpdateRecord(r.document_id, r.seq, r.update, r.actor, r.channel, r.origin, r.created_at)
            for r in rows
        ]

    async def rewrite_log(self, document_id: str, rewrite: Callable[[bytes], bytes]) -> int:
        """Pass every update of the document through ``rewrite`` and drop its snapshots (they
        hold the old state), in one transaction; the number of updates changed.

        For erasure (decision 93): the caller keeps rooms off the document meanwhile, and
        ``rewrite`` must keep every item's id (``domain.yupdates``), so the log stays one
        consistent history. ``compact`` afterwards writes a fresh snapshot."""
        changed = 0
        async with writer_turn(self._engine), self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(_updates.c.seq, _updates.c.update)
                    .where(_updates.c.document_id == document_id)
                    .order_by(_updates.c.seq)
                )
            ).all()
            for row in rows:
                rewritten = rewrite(row.update)
                if rewritten != row.update:
                    changed += 1
                    await connection.execute(
                        _updates.update()
                        .where(_updates.c.document_id == document_id, _updates.c.seq == row.seq)
                        .values(update=rewritten)
                    )
            await connection.execute(
                delete(_snapshots).where(_snapshots.c.document_id == document_id)
            )
        return changed
