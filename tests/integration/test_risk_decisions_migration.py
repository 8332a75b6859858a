"""Migration 0021 copies the decisions on proposed risks taken before it (events of each
DPIA's audit chain) into ``risk_decisions``, each risk's in chain order as rounds 0, 1, …,
so that a risk decided before the upgrade is not proposed again and cannot be decided a
second time (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.catalogue import ACCEPTED_EVENT, DISMISSED_EVENT
from server.services.audit import AuditTrail
from server.services.risk_decisions import RiskDecisions
from server.storage.database import create_engine, migrate
from tests.support.legacy import insert_dpia, seed_owner

pytestmark = pytest.mark.asyncio
DPIA = "DPIA-CAM-2026-1"


async def test_decisions_in_the_audit_chain_become_rows_in_chain_order(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url, "0020")
    engine = create_engine(database_url)
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            await seed_owner(connection, now, "o@camden.example")
            await insert_dpia(connection, now, DPIA)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        audit = AuditTrail(sessions)
        for kind, actor, data in (
            (
                DISMISSED_EVENT,
                "user:1",
                {"risk": "matching", "reason": "Counts only", "grounds": ["a=1"], "by": "O"},
            ),
            (ACCEPTED_EVENT, "user:77", {"risk": "sensitive", "ref": "R1", "by": "Gone"}),
            ("note", "user:1", {"summary": "not a decision"}),
            (
                ACCEPTED_EVENT,
                "user:1",
                {"risk": "matching", "ref": "R2", "grounds": ["a=1", "b=2"], "by": "O"},
            ),
        ):
            await audit.record(DPIA, kind, actor=actor, data=data)
        await asyncio.to_thread(migrate, database_url)
        found = await RiskDecisions(sessions, audit).of(DPIA)
        by_risk = {(d.risk_id, d.round): d for d in found}
        assert sorted(by_risk) == [("matching", 0), ("matching", 1), ("sensitive", 0)]
        first, second = by_risk[("matching", 0)], by_risk[("matching", 1)]
        assert (first.outcome, first.reason, first.grounds) == ("dismissed", "Counts only", {"a=1"})
        assert (second.outcome, second.ref, second.grounds) == ("accepted", "R2", {"a=1", "b=2"})
        assert by_risk[("sensitive", 0)].actor == "Gone"  # a user no longer here: name kept
        # Each risk's decisions in round order: the last one stands.
        assert [d.round for d in found if d.risk_id == "matching"] == [0, 1]
    finally:
        await engine.dispose()
