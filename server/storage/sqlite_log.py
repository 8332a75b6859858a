"""The update log of a SQLite file, appended to and read in one trip to one thread.

The group committer writes every change of every room, so its transaction is the server's
most frequent write. Through SQLAlchemy on aiosqlite each statement of it (begin, insert,
commit, the pool's reset) is a round trip to aiosqlite's thread plus SQLAlchemy's own
work per execution: about 0.7 ms of CPU for a one-row commit, against about 0.25 ms
(fsync included) for the same transaction written by the standard library's ``sqlite3``
in one call on a thread of its own (measured in bench/README.md, "Fan-out after issue 18").
At a hundred updates a second that difference was most of what OpenDPIA's fan-out cost
beyond the Node server's.

``SqliteLog`` keeps one ``sqlite3`` connection to the same file, opened on its own thread
with the engine's pragmas (WAL, ``synchronous=FULL``, foreign keys, busy timeout), and runs
each batch there as one ``BEGIN IMMEDIATE``/``INSERT``/``COMMIT``. The SQL and each
column's conversion are SQLAlchemy's own, compiled once from the table, so a row reads back
exactly as if SQLAlchemy had written it. The caller holds the writer's turn
(``writer_turn``) around ``append``, as for any other write.

Loading a document (its latest snapshot and the log after it) goes the same way, in one
read transaction: through aiosqlite it was three statements, each several trips to a
thread, and for a large document most of the server's share of the first connection after
a restart (decision 159).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from server.domain.documents import UpdateRecord
from server.storage.database import sqlite_pragmas

BUSY_TIMEOUT = 30.0  # seconds, as the engine's connections wait

# The log's columns, each filled by the ``UpdateRecord`` field of the same name.
_FIELDS = ("document_id", "seq", "update", "actor", "channel", "origin", "created_at")


# What ``load`` returns: the latest snapshot (seq, state) or None, and the log after it.
Loaded = tuple[tuple[int, bytes] | None, list[tuple[int, bytes]]]


class SqliteLog:
    """Appends update records to one SQLite file's log, and loads documents from it, on a
    thread of its own."""

    def __init__(
        self,
        path: str,
        table: Table,
        dialect: Dialect,
        *,
        loads: tuple[ClauseElement, ClauseElement, ClauseElement],
    ) -> None:
        """``loads``: the store's statements for whether a document exists, its latest
        snapshot and the log after it (``after``), bound by ``document_id``."""
        self._path = path
        self._exists, self._snapshot, self._tail = (_Query(query, dialect) for query in loads)
        compiled = insert(table).compile(dialect=dialect, column_keys=list(_FIELDS))
        self._sql = str(compiled)
        columns = tuple(compiled.positiontup or ())
        if sorted(columns) != sorted(_FIELDS):
            raise ValueError(f"unexpected columns for the update log: {columns}")
        self._columns: tuple[tuple[str, Callable[[Any], Any] | None], ...] = tuple(
            (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in columns
        )
        # A thread and a queue of its own rather than an executor: the hand-over is a
        # queue put and one call_soon_threadsafe, about half an executor's cost per commit.
        # The thread owns the connection and holds no reference to this object: it ends,
        # closing the connection, on ``close`` or when this object is collected.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        """Commit ``records`` in one transaction (durable when this returns)."""
        rows = [self._row(record) for record in records]
        await self._run(partial(_write, self._sql, rows))

    async def open(self) -> None:
        """Start the thread and open its connection now rather than at the first job."""
        await self._run(_nothing)

    async def load(self, document_id: str) -> Loaded | None:
        """The document's latest snapshot and the log after it (one read transaction), or
        None if there is no such document."""
        found: Loaded | None = await self._run(partial(self._read, document_id))
        return found

    def _read(self, document_id: str, connection: sqlite3.Connection) -> Loaded | None:
        connection.execute("BEGIN")
        try:
            if connection.execute(*self._exists.on(document_id)).fetchone() is None:
                return None
            row = connection.execute(*self._snapshot.on(document_id)).fetchone()
            snapshot = None if row is None else (int(row[0]), bytes(row[1]))
            after = 0 if snapshot is None else snapshot[0]
            tail = connection.execute(*self._tail.on(document_id, after=after)).fetchall()
            return snapshot, [(int(seq), bytes(update)) for seq, update in tail]
        finally:
            connection.execute("COMMIT")

    async def _run(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise RuntimeError("the update log's connection is closed")
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve, args=(self._jobs, self._path), name="opendpia-log", daemon=True
            )
            self._thread.start()
            weakref.finalize(self, self._jobs.put, None)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._jobs.put((work, done, loop))
        return await done

    def _row(self, record: UpdateRecord) -> tuple[Any, ...]:
        return tuple(
            getattr(record, name) if convert is None else convert(getattr(record, name))
            for name, convert in self._columns
        )

    async def close(self) -> None:
        """End the thread and close its connection, after a write under way."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)


class _Query:
    """A SELECT compiled once by SQLAlchemy for SQLite, run with ``document_id`` (and
    ``after``) bound by name."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self._sql = str(compiled)
        self._names = tuple(compiled.positiontup or ())
        self._defaults = dict(compiled.construct_params({"document_id": "", "after": 0}))

    def on(self, document_id: str, **values: Any) -> tuple[str, tuple[Any, ...]]:
        params = {**self._defaults, **values, "document_id": document_id}
        return self._sql, tuple(params[name] for name in self._names)


_Job = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _serve(jobs: queue.SimpleQueue[_Job | None], path: str) -> None:
    """The log thread: run each job on its connection (opened at the first), until None."""
    connection: sqlite3.Connection | None = None
    try:
        while (job := jobs.get()) is not None:
            work, done, loop = job
            try:
                if connection is None:
                    connection = _open(path)
                result = work(connection)
            except BaseException as error:  # handed to the waiting coroutine
                loop.call_soon_threadsafe(_settle, done, error, None)
            else:
                loop.call_soon_threadsafe(_settle, done, None, result)
    finally:
        if connection is not None:
            connection.close()


def _nothing(_connection: sqlite3.Connection) -> None:
    return None


def _open(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
    )
    try:
        sqlite_pragmas(connection)  # the engine's own: WAL, full fsync, busy timeout
    except BaseException:
        connection.close()
        raise
    return connection


def _write(sql: str, rows: list[tuple[Any, ...]], connection: sqlite3.Connection) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(sql, rows)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _settle(done: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    if done.cancelled():  # the waiting coroutine was cancelled; the write still happened
        return
    if error is None:
        done.set_result(result)
    else:
        done.set_exception(error)
