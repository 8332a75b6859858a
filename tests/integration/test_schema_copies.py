"""The suite copies one migrated schema into each fresh database (tests/support/schemas.py):
the copy must be what running the migrations makes, on both databases."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from server.storage.database import alembic_config, migrate
from tests.conftest import postgres_database
from tests.support import schemas


def _sqlite_schema(url: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(url.partition(":///")[2]) as connection:
        rows = connection.execute(
            "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY name"
        ).fetchall()
        version = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    return [tuple(row) for row in rows] + [("version", *v) for v in version]


def _postgres_schema(url: str) -> list[str]:
    parts = urlsplit(url)
    dumped = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "--no-privileges",
            "--inserts",
            "-h",
            parts.hostname or "",
            "-p",
            str(parts.port or 5432),
            "-U",
            "postgres",
            parts.path.lstrip("/"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # \restrict carries a random key per dump; comments name the database.
    return [line for line in dumped.splitlines() if line and not line.startswith(("\\", "--"))]


def _migrated_for_real(url: str) -> None:
    schemas._original_upgrade(alembic_config(url), "head")


def test_a_copied_sqlite_schema_is_the_migrated_one(tmp_path: Path) -> None:
    first, second, real = (f"sqlite+aiosqlite:///{tmp_path / n}.db" for n in "abc")
    migrate(first)  # the template, or a copy of it
    migrate(second)  # a copy
    _migrated_for_real(real)
    assert _sqlite_schema(second) == _sqlite_schema(real)
    assert _sqlite_schema(first) == _sqlite_schema(real)


def test_a_copied_postgresql_schema_is_the_migrated_one() -> None:
    databases = [postgres_database() for _ in range(3)]
    first, second, real = (next(d) for d in databases)
    try:
        migrate(first)
        migrate(second)
        _migrated_for_real(real)
        plain = [u.replace("postgresql+asyncpg://", "postgresql://") for u in (first, second, real)]
        expected = _postgres_schema(plain[2])
        assert _postgres_schema(plain[1]) == expected
        assert _postgres_schema(plain[0]) == expected
    finally:
        for database in databases:
            for _ in database:
                pass
