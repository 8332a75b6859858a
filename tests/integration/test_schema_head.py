"""A server whose database is already at the newest migration does not run (or import)
Alembic: ``SCHEMA_HEAD`` must name Alembic's head, and the check must tell a current
database from a new or an older one, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from server.storage.database import (
    SCHEMA_HEAD,
    alembic_config,
    create_engine,
    migrate,
    schema_is_current,
)
from tests.conftest import postgres_database


def _is_current(url: str) -> bool:
    async def check() -> bool:
        engine = create_engine(url)
        try:
            return await schema_is_current(engine)
        finally:
            await engine.dispose()

    return asyncio.run(check())


def test_schema_head_names_the_newest_migration(tmp_path: Path) -> None:
    scripts = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'x.db'}"))
    assert scripts.get_current_head() == SCHEMA_HEAD, "bump SCHEMA_HEAD with a new migration"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'head.db'}"
    else:
        yield from postgres_database()


def test_only_a_database_at_the_head_is_current(database_url: str) -> None:
    assert not _is_current(database_url), "a new database has no schema"
    migrate(database_url, "0021")
    assert not _is_current(database_url), "an older schema is not current"
    migrate(database_url)
    assert _is_current(database_url)
