"""Change events in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.changes import ChangeEvent
from server.storage.models import ChangeEventRow

_events = cast(Table, ChangeEventRow.__table__)


class SqlChangeEvents:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, events: Sequence[ChangeEvent]) -> None:
        if not events:
            return
        async with self._engine.begin() as connection:
            await connection.execute(insert(_events), [row_values(e) for e in events])

    async def of_document(self, document_id: str) -> list[ChangeEvent]:
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(_events)
                    .where(_events.c.document_id == document_id)
                    .order_by(_events.c.id)
                )
            ).all()
        return [
            ChangeEvent(
                r.document_id,
                r.actor,
                r.channel,
                r.field,
                r.row,
                _utc(r.first_at),
                _utc(r.last_at),
                r.edits,
                r.excerpt,
            )
            for r in rows
        ]


def row_values(event: ChangeEvent) -> dict[str, object]:
    """The columns of one event (also used by writers with their own transaction)."""
    return {
        "document_id": event.document_id,
        "actor": event.actor,
        "channel": event.channel,
        "field": event.field,
        "row": event.row,
        "first_at": event.first_at,
        "last_at": event.last_at,
        "edits": event.edits,
        "excerpt": event.excerpt[:500],
    }


def _utc(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
