"""Appending to and checking a DPIA's audit chain (``domain.audit`` has the rules).

Appends happen inside the caller's transaction, so an event is chained if and only if what
it records happened. The DPIA row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite serialises writers anyway), so two appends cannot take the same position.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.audit import (
    ERASURE,
    GENESIS,
    AuditRecord,
    BrokenLink,
    content_digest,
    encode_data,
    erasure_data,
    verify,
)
from server.domain.errors import DocumentNotFound
from server.storage.models import AdminAuditEvent, AuditEvent, Dpia


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    record: AuditRecord

    @property
    def data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.record.data)
        return loaded


class AuditTrail:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(
        self,
        session: AsyncSession,
        dpia_id: str,
        kind: str,
        *,
        actor: str,
        channel: str = "browser",
        section: str | None = None,
        seq: int = 0,
        data: dict[str, Any] | None = None,
    ) -> AuditRecord:
        dpia = (
            await session.execute(
                select(Dpia)
                .where(Dpia.id == dpia_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if dpia is None:
            raise DocumentNotFound("There is no such DPIA")
        record = AuditRecord(
            dpia_id=dpia_id,
            position=dpia.audit_count + 1,
            kind=kind,
            actor=actor,
            channel=channel,
            section=section,
            seq=seq,
            at=datetime.now(UTC),
            data=encode_data(data or {}),
            prev_hash=dpia.audit_head or GENESIS,
        )
        chained = record.chained()
        session.add(AuditEvent(**_fields(chained)))
        dpia.audit_count = chained.position
        dpia.audit_head = chained.hash
        return chained

    async def redact(
        self,
        session: AsyncSession,
        dpia_id: str,
        rewrite: Callable[[str], str],
        *,
        actor: str,
        channel: str,
        details: dict[str, Any],
    ) -> list[int]:
        """Rewrite the actor and data of every event of the DPIA through ``rewrite`` (in the
        caller's transaction) and append one erasure event naming what changed (even when
        nothing did: the erasure itself is on the record); the redacted positions."""
        rows = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.dpia_id == dpia_id)
                .order_by(AuditEvent.position, AuditEvent.id)
            )
        ).all()
        redacted = await redact_rows(session, rows, rewrite)
        await self.append(
            session,
            dpia_id,
            ERASURE,
            actor=actor,
            channel=channel,
            data=erasure_data(redacted, **details),
        )
        return sorted(redacted)

    async def record(self, dpia_id: str, kind: str, **details: Any) -> AuditRecord:
        """Append in a transaction of its own (events with nothing else to commit)."""
        async with self._sessions.begin() as session:
            return await self.append(session, dpia_id, kind, **details)

    async def entries(self, dpia_id: str) -> list[AuditEntry]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.dpia_id == dpia_id)
                .order_by(AuditEvent.position, AuditEvent.id)
            )
            return [AuditEntry(row.id, _record(row)) for row in rows]

    async def verify(self, dpia_id: str) -> BrokenLink | None:
        """The first broken link of the DPIA's chain, or None if it holds."""
        async with self._sessions() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                raise DocumentNotFound(f"There is no DPIA {dpia_id!r}")
            count, head = dpia.audit_count, dpia.audit_head
        entries = await self.entries(dpia_id)
        return verify([(e.id, e.record) for e in entries], count, head)


async def redact_rows(
    session: AsyncSession,
    rows: Sequence[AuditEvent | AdminAuditEvent],
    rewrite: Callable[[str], str],
) -> dict[int, str]:
    """Rewrite the actor and data of a chain's stored links through ``rewrite`` (in the
    caller's transaction, flushed); the position of each link that changed with the hash of
    its new content, for the erasure event that must follow in the same chain
    (``domain.audit.erasure_data``). Every chain, a DPIA's or the administration's, is
    redacted here, so they cannot drift apart."""
    redacted: dict[int, str] = {}
    for row in rows:
        actor_now, data_now = rewrite(row.actor), rewrite(row.data)
        if (actor_now, data_now) == (row.actor, row.data):
            continue
        row.actor, row.data = actor_now, data_now
        redacted[row.position] = content_digest(actor_now, data_now)
    await session.flush()
    return redacted


def _fields(record: AuditRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AuditRecord.__slots__}


def _record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(
        dpia_id=row.dpia_id,
        position=row.position,
        kind=row.kind,
        actor=row.actor,
        channel=row.channel,
        section=row.section,
        seq=row.seq,
        at=row.at,
        data=row.data,
        prev_hash=row.prev_hash,
        hash=row.hash,
        content_hash=row.content_hash,
    )
