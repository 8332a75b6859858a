"""Rows written as an earlier revision's tables had them, for migration tests: through
lightweight ``table()``s naming only the columns given, never the models, whose later
columns (with their defaults) do not exist yet at that revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import column, insert, table
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_rows(connection: AsyncConnection, table_name: str, /, **values: Any) -> None:
    """One row of ``table_name`` with exactly these columns."""
    await connection.execute(insert(table(table_name, *map(column, values))).values(**values))


async def seed_owner(connection: AsyncConnection, now: datetime, email: str) -> None:
    """Organisation 1 (Camden) and user 1, who creates the legacy DPIAs."""
    await insert_rows(connection, "organisations", id=1, code="CAM", name="Camden", created_at=now)
    await insert_rows(
        connection,
        "users",
        id=1,
        email=email,
        name="O",
        password_hash="x",
        active=True,
        created_at=now,
    )


async def insert_dpia(
    connection: AsyncConnection, now: datetime, dpia_id: str, **values: Any
) -> None:
    """A document and its DPIA record, by user 1 for organisation 1; ``values`` add or
    override DPIA columns (``title``, ``status``, ``ig_step``)."""
    await insert_rows(connection, "documents", id=dpia_id, created_at=now, created_by="user:1")
    await insert_rows(
        connection,
        "dpias",
        **{
            "id": dpia_id,
            "title": "T",
            "lead_organisation_id": 1,
            "status": "draft",
            "template_id": "uk-dpia",
            "template_version": 1,
            "created_by": 1,
            "created_at": now,
            **values,
        },
    )
