"""The engine, SQLite's pragmas, and running the Alembic migrations."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("opendpia.storage")
_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_FILES: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
TURN_WAIT_SECONDS = 5.0


def create_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, full fsync on commit and a busy timeout."""
    if database_url.startswith("sqlite"):
        _ensure_parent_directory(database_url)
        # Every connection is kept: with aiosqlite an overflow connection is a new thread
        # and a new SQLite handle (and its pragmas) each time it is needed.
        engine = create_async_engine(
            database_url,
            connect_args={"timeout": 30},
            pool_size=pool_size + max_overflow,
            max_overflow=0,
        )
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)
    # Not pool_pre_ping: with asyncpg it is BEGIN, ``;`` and ROLLBACK, three round trips on
    # every checkout, which doubled the cost of a group commit (decision 153).
    event.listen(engine.sync_engine, "checkin", _checked_in)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


# The errors among which ``is_unreachable`` looks (for handlers registered by class).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or its connection broke (a
    restart, a failover, a pool with no connection free, a file locked too long), rather
    than that a statement was wrong: the request may simply be tried again."""
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return bool(error.connection_invalidated) or isinstance(
            error, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


PING_IDLE_SECONDS = 1.0  # a pooled connection idle this long is pinged before it is used


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a pooled connection only if it sat idle: a server restart or a dropped link is
    found before a request uses it, as with ``pool_pre_ping``, while connections in steady
    use (the group committer's) pay nothing. A connection that broke while in steady use
    fails its next statement once; SQLAlchemy then discards the pool's older connections,
    and the committer retries (it never drops an update)."""
    checked_in = record.info.get("checked_in")
    if checked_in is None or time.monotonic() - checked_in < PING_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as error:
        # The pool replaces this connection and checks out again.
        raise DisconnectionError(f"pooled connection is gone: {error}") from error


def engine_of(bind: AsyncEngine | async_sessionmaker[Any]) -> AsyncEngine:
    """The engine itself, or the one a session factory was made with."""
    engine = bind.kw.get("bind") if isinstance(bind, async_sessionmaker) else bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError(f"no engine behind {bind!r}")
    return engine


def writer_turn(
    bind: AsyncEngine | async_sessionmaker[Any],
) -> AbstractAsyncContextManager[None]:
    """Wait for this process's turn to write, around a write transaction (enter it first).

    SQLite has one writer at a time. Another one sleeps in its busy handler, polling in
    steps of up to 100 ms while newcomers may take the lock before it, so under load a
    short write could wait most of a second. This process's busiest writers (the update
    log, inbound mail, outcomes, notifications, the outbox) queue here instead, in order,
    and find the lock free. Only leaf transactions take a turn: none waits, holding one,
    for anything that needs another. A writer that has waited ``TURN_WAIT_SECONDS`` goes
    ahead anyway, as before turns existed: SQLite's own lock keeps it correct, and no
    mistake in that rule can hang the process. PostgreSQL writes side by side: no waiting.

    Processes writing the same SQLite file (``serve`` and its email bridge child) also take
    turns, on an advisory lock of a file beside the database (``<database>-turn``), handed
    over by the kernel the moment it is released rather than in SQLite's steps of up to
    100 ms.
    """
    try:
        engine = engine_of(bind)
    except TypeError:  # no engine to take turns on (as before: nothing to wait for)
        return contextlib.nullcontext()
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _WRITERS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITERS[engine.sync_engine] = asyncio.Lock()
    return _turn(lock, _turn_file(engine))


def _turn_file(engine: AsyncEngine) -> int | None:
    """The descriptor of the file whose lock is the turn between processes, or None."""
    fd = _FILES.get(engine.sync_engine)
    if fd is None:
        path = engine.url.database
        if not path or path.startswith(":memory:") or path.startswith("file:"):
            return None
        fd = os.open(f"{path}-turn", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        _FILES[engine.sync_engine] = fd
        weakref.finalize(engine.sync_engine, os.close, fd)
    return fd


@contextlib.asynccontextmanager
async def _turn(lock: asyncio.Lock, fd: int | None) -> AsyncIterator[None]:
    deadline = time.monotonic() + TURN_WAIT_SECONDS
    try:
        async with asyncio.timeout(TURN_WAIT_SECONDS):
            await lock.acquire()
    except TimeoutError:
        log.warning("waited %s s for a turn to write; writing without one", TURN_WAIT_SECONDS)
        yield
        return
    held = False
    try:
        if fd is not None:
            held = await _file_turn(fd, deadline)
        yield
    finally:
        if held:
            assert fd is not None
            fcntl.flock(fd, fcntl.LOCK_UN)
        lock.release()


async def _file_turn(fd: int, deadline: float) -> bool:
    """Take the other processes' turn on ``fd``; False when it was not had by ``deadline``.

    Free: taken at once. Held by another process: a thread waits in ``flock`` and the
    kernel hands the lock over the moment it is released, with nothing polling meanwhile
    (polling every 2 ms cost ``serve``'s loop a wake-up each and a millisecond on average
    per hand-over). A wait given up (the deadline, or the caller cancelled) releases the
    lock as soon as the thread gets it.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await asyncio.shield(waiting)
        return True
    except TimeoutError:
        log.warning("another process kept the turn to write; writing anyway")
        waiting.add_done_callback(_release_when_taken(fd))
        return False
    except asyncio.CancelledError:
        waiting.add_done_callback(_release_when_taken(fd))
        raise


def _release_when_taken(fd: int) -> Callable[[asyncio.Future[None]], None]:
    def release(taken: asyncio.Future[None]) -> None:
        if not taken.cancelled() and taken.exception() is None:
            fcntl.flock(fd, fcntl.LOCK_UN)

    return release


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """Set a new SQLite connection up the way every writer of the file needs it."""
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; synchronous=FULL makes every commit
    # durable across power loss too, and group commit keeps the fsyncs few.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _ensure_parent_directory(database_url: str) -> None:
    _, _, path = database_url.partition(":///")
    if path and not path.startswith(":memory:"):
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


# The newest migration (migrations/versions). A server whose database is already there does
# not import Alembic at all (with Mako and Pygments, about 11 MB of every process's memory);
# tests/integration/test_schema_head.py checks that this names Alembic's head.
SCHEMA_HEAD = "0023"


async def schema_is_current(engine: AsyncEngine) -> bool:
    """Whether the database is already at ``SCHEMA_HEAD`` (False when it has no schema)."""
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no alembic_version table: a new database
        return False
    return bool(found == SCHEMA_HEAD)


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision``. Blocking: call it from a thread in async code."""
    from alembic import command

    _ensure_parent_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)
