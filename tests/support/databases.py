"""Fresh PostgreSQL databases for tests, made and dropped off the tests' path.

PostgreSQL 15 makes every ``DROP DATABASE`` wait for a checkpoint of the whole server (so
that no file of the dropped database is written again): 0.1 s on a quiet server, one to
three seconds while other tests write, and it was paid at the end of each of the suite's
~300 PostgreSQL tests. Dropping is now handed to a thread of the test process, which drops
while the next tests run; the end of the session waits for it. A test's database is still
its own: a name is never handed out twice, and a dropped database is gone by the end.

``CREATE DATABASE … TEMPLATE`` copies a migrated template quickly but cannot fill a database
that exists, so ``tests/support/schemas.py`` makes the copy under a new name and swaps the
names; the empty database it replaces was never written to, so it is kept as a spare and
given, as it is, to the next test that asks for a fresh database.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sys
import threading
import uuid

HOST = os.environ.get("OPENDPIA_TEST_POSTGRES", "127.0.0.1:5432")
ADMIN_DSN = f"postgresql://postgres@{HOST}/postgres"
PREFIX = "opendpia_test_"

_spares: list[str] = []  # empty databases, never connected to by a test
_lock = threading.Lock()
_to_drop: queue.Queue[str | None] = queue.Queue()
_dropper: threading.Thread | None = None
_failures: list[str] = []


def new_name() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:12]}"


def url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@{HOST}/{name}"


def create() -> str:
    """The name of a new, empty database (raises OSError or TimeoutError without a server)."""
    with _lock:
        if _spares:
            return _spares.pop()
    name = new_name()
    asyncio.run(_execute(f'CREATE DATABASE "{name}"'))
    return name


def keep_spare(name: str) -> None:
    """``name`` is empty and nobody uses it: the next ``create`` may hand it out."""
    with _lock:
        _spares.append(name)


def drop_later(name: str) -> None:
    """Drop ``name`` (and end any connection to it) soon, without waiting for it here."""
    global _dropper
    with _lock:
        if _dropper is None:
            _dropper = threading.Thread(target=_drop_all, name="drop-databases", daemon=True)
            _dropper.start()
    _to_drop.put(name)


def finish(timeout: float = 300) -> None:
    """At the end of the session: drop the spares and wait until every drop is done."""
    with _lock:
        spares, _spares[:] = list(_spares), []
    for name in spares:
        drop_later(name)
    if _dropper is None:
        return
    _to_drop.put(None)
    _dropper.join(timeout)
    if _dropper.is_alive():
        _failures.append(f"databases still being dropped after {timeout} s")
    for failure in _failures:
        sys.stderr.write(f"test database not dropped: {failure}\n")


def _drop_all() -> None:
    while (name := _to_drop.get()) is not None:
        try:
            asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as error:  # reported at the end; a later test is not to blame
            _failures.append(f"{name}: {error!r}")


async def _execute(*statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
