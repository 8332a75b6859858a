"""Update logs for storage tests: a migrated engine, a document's edits and their records."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc, Text
from sqlalchemy.ext.asyncio import AsyncEngine

from server.domain.documents import UpdateRecord
from server.storage.database import create_engine, migrate


@contextlib.asynccontextmanager
async def migrated(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated to the newest schema, disposed of afterwards."""
    await asyncio.to_thread(migrate, url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


def edits(count: int, *, at_both_ends: bool = False) -> list[bytes]:
    """The updates of ``count`` edits to the text ``t``: ``0;1;2;…``, or with two of every
    three inserted at the start (``at_both_ends``)."""
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text.insert(0 if at_both_ends and i % 3 else len(text), f"{i};")
    return updates


def records(document_id: str, updates: list[bytes], first_seq: int = 1) -> list[UpdateRecord]:
    """The log records of ``updates``, numbered from ``first_seq``."""
    now = datetime.now(UTC)
    return [
        UpdateRecord(document_id, first_seq + i, u, "alice", "api", "test", now)
        for i, u in enumerate(updates)
    ]
