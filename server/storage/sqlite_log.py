"""Appending to the update log of a SQLite file in one trip to one thread.

The group committer writes every change of every room, so its transaction is the server's
most frequent write. Through SQLAlchemy on aiosqlite each statement of it (begin, insert,
commit, the pool's reset) is a round trip to aiosqlite's thread plus SQLAlchemy's own
work per execution: about 0.7 ms of CPU for a one-row commit, against about 0.25 ms
(fsync included) for the same transaction written by the standard library's ``sqlite3``
in one call on a thread of its own (measured in bench/README.md, "Fan-out after issue 18").
At a hundred updates a second that difference was most of what OpenDPIA's fan-out cost
beyond the Node server's.

``SqliteLogAppender`` keeps one ``sqlite3`` connection to the same file, opened on its
own thread with the engine's pragmas (WAL, ``synchronous=FULL``, foreign keys, busy
timeout), and runs each batch there as one ``BEGIN IMMEDIATE``/``INSERT``/``COMMIT``. The
SQL and each column's conversion are SQLAlchemy's own, compiled once from the table, so a
row reads back exactly as if SQLAlchemy had written it. The caller holds the writer's turn
(``writer_turn``) around ``append``, as for any other write.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect

from server.domain.documents import UpdateRecord
from server.storage.database import sqlite_pragmas

BUSY_TIMEOUT = 30.0  # seconds, as the engine's connections wait

# The log's columns, each filled by the ``UpdateRecord`` field of the same name.
_FIELDS = ("document_id", "seq", "update", "actor", "channel", "origin", "created_at")


class SqliteLogAppender:
    """Writes update records to one SQLite file's log table, on a thread of its own."""

    def __init__(self, path: str, table: Table, dialect: Dialect) -> None:
        self._path = path
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
        if self._closed:
            raise RuntimeError("the update log appender is closed")
        rows = [self._row(record) for record in records]
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve, args=(self._jobs, self._path), name="opendpia-log", daemon=True
            )
            self._thread.start()
            weakref.finalize(self, self._jobs.put, None)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._jobs.put((partial(_write, self._sql, rows), done, loop))
        await done

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


_Job = tuple[
    Callable[[sqlite3.Connection], None], "asyncio.Future[None]", asyncio.AbstractEventLoop
]


def _serve(jobs: queue.SimpleQueue[_Job | None], path: str) -> None:
    """The log thread: run each job on its connection (opened at the first), until None."""
    connection: sqlite3.Connection | None = None
    try:
        while (job := jobs.get()) is not None:
            work, done, loop = job
            try:
                if connection is None:
                    connection = _open(path)
                work(connection)
            except BaseException as error:  # handed to the waiting coroutine
                loop.call_soon_threadsafe(_settle, done, error)
            else:
                loop.call_soon_threadsafe(_settle, done, None)
    finally:
        if connection is not None:
            connection.close()


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


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.cancelled():  # the waiting coroutine was cancelled; the write still happened
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
