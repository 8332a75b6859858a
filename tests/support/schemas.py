"""Migrated schemas made once per test process and copied into each fresh database.

Most tests start from a new, empty database and migrate it to the latest revision, and running
every migration costs about half a second of CPU each time: minutes over the suite. Here the
first empty database of each kind a test process migrates to ``head`` is migrated for real and
kept as the template; every later empty database asked for ``head`` receives a copy of it
(SQLite: the backup API copies the pages; PostgreSQL: the template's ``pg_dump``, replayed).
The copy is exactly what the migrations made in this process, so nothing is skipped that a
test could see; a database that is not empty, or a migration to another revision (the
migration tests), runs the migrations themselves.

Installed by ``tests/conftest.py`` around ``alembic.command.upgrade``, which is what
``server.storage.database.migrate`` (and so the app's own start-up migration) calls. Servers
started as child processes migrate for real.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from alembic import command
from alembic.config import Config

T = TypeVar("T")

_original_upgrade = command.upgrade
_templates: dict[str, Any] = {}  # "sqlite" -> template file; "postgresql" -> SQL script
_lock = threading.Lock()
_workdir = Path(tempfile.mkdtemp(prefix="opendpia-schemas-"))


def install() -> None:
    command.upgrade = _upgrade


def uninstall() -> None:
    command.upgrade = _original_upgrade
    shutil.rmtree(_workdir, ignore_errors=True)


def _upgrade(config: Config, revision: str, *args: Any, **kwargs: Any) -> None:
    url = (config.get_main_option("sqlalchemy.url") or "").replace("%%", "%")
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    if revision != "head" or args or kwargs or not _empty(kind, url):
        _original_upgrade(config, revision, *args, **kwargs)
        return
    with _lock:
        template = _templates.get(kind)
        if template is None:
            _original_upgrade(config, revision)
            _templates[kind] = _keep(kind, url)
            return
    _copy(kind, template, url)


def _sqlite_path(url: str) -> str:
    return url.partition(":///")[2]


def _postgres_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _empty(kind: str, url: str) -> bool:
    if kind == "sqlite":
        path = _sqlite_path(url)
        if not path or path.startswith(":memory:"):
            return False
        if not Path(path).exists():
            return True
        with sqlite3.connect(path) as connection:
            count = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return int(count) == 0
    return int(_run(_pg_scalar(url, _PG_TABLES))) == 0


_PG_TABLES = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE n.nspname = 'public'"


async def _pg_scalar(url: str, sql: str) -> Any:
    import asyncpg

    connection = await asyncpg.connect(_postgres_dsn(url), timeout=10)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def _pg_script(url: str, script: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_postgres_dsn(url), timeout=10)
    try:
        await connection.execute(script)
    finally:
        await connection.close()


def _keep(kind: str, url: str) -> Any:
    """The template, taken from the database just migrated."""
    if kind == "sqlite":
        target = _workdir / "template.db"
        _sqlite_copy(_sqlite_path(url), str(target))
        return target
    parts = urlsplit(_postgres_dsn(url))
    dumped = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "--host",
            parts.hostname or "127.0.0.1",
            "--port",
            str(parts.port or 5432),
            "--username",
            unquote(parts.username or "postgres"),
            (parts.path or "/").lstrip("/"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # psql's meta-commands (pg_dump writes \restrict and \unrestrict) are not SQL.
    return "\n".join(line for line in dumped.splitlines() if not line.startswith("\\"))


def _copy(kind: str, template: Any, url: str) -> None:
    if kind == "sqlite":
        path = Path(_sqlite_path(url))
        path.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_copy(str(template), str(path))
    else:
        _run(_pg_script(url, str(template)))


def _sqlite_copy(source: str, target: str) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end on a loop of its own (the caller may be inside one)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:  # re-raised in the caller
            failure.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
