"""Migrated schemas made once per test process and copied into each fresh database.

Most tests start from a new, empty database and migrate it to the latest revision, and running
every migration costs about half a second of CPU each time: minutes over the suite. Here the
migrations run for real once per test process and kind, and every empty database asked for
``head`` receives a copy of the result. SQLite: the first such database is migrated and its
pages are copied into the later ones (the backup API). PostgreSQL: a database of the
process's own is migrated and kept as a template nobody connects to; the empty database is
replaced by a ``CREATE DATABASE … TEMPLATE`` copy of it (tests/support/databases.py says
how), or, when someone is connected to the empty one already, the template's ``pg_dump`` is
replayed into it.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from alembic import command
from alembic.config import Config

from tests.support import databases

T = TypeVar("T")

_original_upgrade = command.upgrade
_templates: dict[str, Any] = {}  # "sqlite" -> template file; "postgresql" -> _PostgresTemplate
_lock = threading.Lock()
_workdir = Path(tempfile.mkdtemp(prefix="opendpia-schemas-"))


def install() -> None:
    command.upgrade = _upgrade


def uninstall() -> None:
    command.upgrade = _original_upgrade
    template = _templates.pop("postgresql", None)
    if template is not None:
        databases.drop_later(template.database)
    shutil.rmtree(_workdir, ignore_errors=True)


@dataclass
class _PostgresTemplate:
    """A migrated database kept only to be copied: nobody connects to it, which is what
    ``CREATE DATABASE … TEMPLATE`` needs. Copying it that way takes about a tenth of a
    second; replaying its dump took several times that for every PostgreSQL test."""

    url: str  # the template's own URL
    database: str
    script: str | None = None  # its dump, made the first time a copy cannot be a template copy


def _upgrade(config: Config, revision: str, *args: Any, **kwargs: Any) -> None:
    url = (config.get_main_option("sqlalchemy.url") or "").replace("%%", "%")
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    if revision != "head" or args or kwargs or not _empty(kind, url):
        _original_upgrade(config, revision, *args, **kwargs)
        return
    with _lock:
        template = _templates.get(kind)
        if template is None and kind == "sqlite":
            _original_upgrade(config, revision)
            _templates[kind] = _keep(url)
            return
        if template is None:
            template = _templates[kind] = _postgres_template(url)
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


def _keep(url: str) -> Path:
    """The SQLite template, taken from the database just migrated."""
    target = _workdir / "template.db"
    _sqlite_copy(_sqlite_path(url), str(target))
    return target


def _postgres_template(url: str) -> _PostgresTemplate:
    """A database of its own on the server of ``url``, migrated for real. Not the database
    asked for: an app that asked through its own pool stays connected to that one, and a
    database in use cannot be a template."""
    from server.storage.database import alembic_config

    # Named like the test databases, so that one left by a killed run is known to be ours.
    name = databases.new_name()
    _run(_pg_admin(url, f'CREATE DATABASE "{name}"'))
    own_url = urlsplit(url)._replace(path=f"/{name}").geturl()
    _original_upgrade(alembic_config(own_url), "head")
    return _PostgresTemplate(own_url, name)


def _database_name(url: str) -> str:
    return unquote(urlsplit(_postgres_dsn(url)).path.lstrip("/"))


def _with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` on the same server."""
    return urlsplit(_postgres_dsn(url))._replace(path=f"/{name}").geturl()


def _admin_dsn(url: str) -> str:
    """The same server's maintenance database (to create and drop others from)."""
    return _with_database(url, "postgres")


async def _pg_admin(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_dsn(url), timeout=10)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _pg_swap_in_copy(url: str, template: str) -> str | None:
    """Put a copy of ``template`` in the place of the empty database at ``url`` (a copy made
    under a new name, then the two names swapped) and return the empty one's new name; or
    None, leaving everything as it was, when someone is connected to it (an app that asked
    for the migration through its own pool: renaming would fail, dropping would break it)."""
    import asyncpg

    name = _database_name(url)
    copy, spare = databases.new_name(), databases.new_name()
    connection = await asyncpg.connect(_admin_dsn(url), timeout=10)
    try:
        # The emptiness check's own connection may take a moment to end; a pool's stays.
        deadline = asyncio.get_running_loop().time() + 0.5
        while await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
        ):
            if asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(0.01)
        await connection.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        try:
            await connection.execute(f'ALTER DATABASE "{name}" RENAME TO "{spare}"')
        except asyncpg.ObjectInUseError:  # someone connected since: it stays theirs
            databases.drop_later(copy)
            return None
        await connection.execute(f'ALTER DATABASE "{copy}" RENAME TO "{name}"')
        return spare
    finally:
        await connection.close()


def _dump(url: str) -> str:
    """The database at ``url`` as an SQL script that makes it again."""
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
        return
    # One copy at a time: the template must not be read (dumped) while it is copied.
    with _lock:
        spare = _run(_pg_swap_in_copy(url, template.database))
        if spare is not None:
            databases.keep_spare(spare)
            return
        if template.script is None:
            template.script = _dump(template.url)
    _run(_pg_script(url, template.script))


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
