"""PostgreSQL connections in the pool: pinged only when they sat idle, replaced when gone."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.storage import database
from server.storage.database import create_engine

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT pg_backend_pid()")))


async def test_a_pooled_connection_killed_while_idle_is_replaced_before_it_is_used(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_IDLE_SECONDS", 0.0)  # every checkout counts as idle
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        # The one pooled connection is dead: the ping at checkout finds it, the pool opens
        # another, and the statement never sees the dead one.
        second = await _backend_pid(engine)
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_pinged(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_IDLE_SECONDS", 3600.0)
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        # Not idle long enough to be pinged: its next statement fails once (asyncpg says
        # "connection is closed", or, if the termination arrives mid-statement, "cannot
        # switch to state"), and the pool then replaces it.
        with pytest.raises(DBAPIError):
            await _backend_pid(engine)
        assert await _backend_pid(engine) != first
    finally:
        await engine.dispose()


async def _terminate(postgres_url: str, backend_pid: int) -> None:
    """End one server process of the pool from the outside, as a PostgreSQL restart would."""
    admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""), timeout=5)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", backend_pid)
    finally:
        await admin.close()
