"""Migration 0014 re-links audit chains over content hashes: a chain written by the old rule
verifies afterwards (and can then be redacted), a chain that was already broken stays broken
rather than being laundered by the migration (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.audit import GENESIS, AuditRecord, encode_data
from server.services.audit import AuditTrail
from server.storage.database import create_engine, migrate
from server.storage.models import AuditEvent, Dpia
from tests.support.legacy import insert_dpia, seed_owner

pytestmark = pytest.mark.asyncio


async def _old_chain(connection: object, dpia_id: str, events: int) -> str:
    """Write ``events`` links by the rule before 0014 (the hash covers actor and data)."""
    previous = GENESIS
    for position in range(1, events + 1):
        record = AuditRecord(
            dpia_id,
            position,
            "note",
            f"user:{position}",
            "browser",
            None,
            position,
            datetime(2026, 11, position, 12, tzinfo=UTC),
            encode_data({"summary": f"event {position}"}),
            previous,
        )
        previous = record.legacy_hash()
        await connection.execute(  # type: ignore[attr-defined]
            insert(AuditEvent).values(
                dpia_id=dpia_id,
                position=position,
                kind=record.kind,
                actor=record.actor,
                channel=record.channel,
                section=None,
                seq=record.seq,
                at=record.at,
                data=record.data,
                prev_hash=record.prev_hash,
                hash=previous,
            )
        )
    await connection.execute(  # type: ignore[attr-defined]
        update(Dpia).where(Dpia.id == dpia_id).values(audit_count=events, audit_head=previous)
    )
    return previous


async def test_an_old_chain_is_relinked_and_verifies_and_a_broken_one_stays_broken(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url, "0011")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            # Tables as 0011 left them: the models' later columns (with defaults) are absent.
            await seed_owner(connection, now, "o@camden.example")
            for dpia_id, status in (("DPIA-CAM-2026-1", "draft"), ("DPIA-CAM-2026-2", "rejected")):
                await insert_dpia(connection, now, dpia_id, status=status)
            old_head = await _old_chain(connection, "DPIA-CAM-2026-1", 4)
            await _old_chain(connection, "DPIA-CAM-2026-2", 3)
            # The second chain was tampered with before the upgrade.
            await connection.execute(
                update(AuditEvent)
                .where(AuditEvent.dpia_id == "DPIA-CAM-2026-2", AuditEvent.position == 2)
                .values(data='{"summary":"forged"}')
            )
        await asyncio.to_thread(migrate, database_url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        audit = AuditTrail(sessions)
        assert await audit.verify("DPIA-CAM-2026-1") is None
        entries = await audit.entries("DPIA-CAM-2026-1")
        assert all(e.record.content_hash for e in entries)
        assert [e.data["summary"] for e in entries] == [f"event {n}" for n in range(1, 5)]
        async with sessions() as session:
            dpia = await session.get_one(Dpia, "DPIA-CAM-2026-1")
            assert dpia.audit_head != old_head and dpia.audit_head == entries[-1].record.hash
            closed = await session.scalar(
                select(Dpia.closed_at).where(Dpia.id == "DPIA-CAM-2026-2")
            )
            assert closed is not None  # retention of a closed DPIA counts from the upgrade
        broken = await audit.verify("DPIA-CAM-2026-2")
        assert broken is not None and broken.position == 2
        assert all(e.record.content_hash is None for e in await audit.entries("DPIA-CAM-2026-2"))
        # A relinked chain can be redacted and still verifies; new events chain on.
        async with sessions.begin() as session:
            await audit.redact(
                session,
                "DPIA-CAM-2026-1",
                lambda text: text.replace("event 2", "event [erased]"),
                actor="cli",
                channel="cli",
                details={"rule": "test"},
            )
        await audit.record("DPIA-CAM-2026-1", "note", actor="user:1", data={"summary": "after"})
        assert await audit.verify("DPIA-CAM-2026-1") is None
        assert len(await audit.entries("DPIA-CAM-2026-1")) == 6
    finally:
        await engine.dispose()
