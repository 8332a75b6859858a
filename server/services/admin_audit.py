"""The administration's audit chain: every change to organisations and people, chained as
a DPIA's events are (``domain.audit``: the same record, links over content hashes and
verification; the chain's name stands where a DPIA's reference does), so erasing a person
redacts their name and address here too, with an erasure event naming what changed.

Appends happen inside the caller's transaction, so an event is chained if and only if the
change it records was committed. The chain's head row is locked first (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite serialises writers anyway), so two appends cannot take the
same position; the head is created by the first append.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.administration import ADMIN_CHAIN
from server.domain.audit import (
    ERASURE,
    GENESIS,
    AuditRecord,
    BrokenLink,
    encode_data,
    erasure_data,
    verify,
)
from server.services.audit import AuditEntry, redact_rows
from server.storage.models import AdminAuditEvent, AuditChain

log = logging.getLogger("opendpia.admin")


class ChangeRecorder(Protocol):
    """Records an administrative change in the caller's transaction."""

    async def __call__(
        self,
        session: AsyncSession,
        kind: str,
        /,
        *,
        actor: str,
        channel: str,
        organisation_id: int | None,
        data: dict[str, Any],
    ) -> Any: ...


async def log_change(
    _session: AsyncSession,
    kind: str,
    *,
    actor: str,
    channel: str,
    organisation_id: int | None,
    data: dict[str, Any],
) -> None:
    """Where no audit chain is wired in (a unit under test): the change, in the log."""
    log.info("%s by %s (%s) for organisation %s: %s", kind, actor, channel, organisation_id, data)


class AdminAuditTrail:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], chain: str = ADMIN_CHAIN
    ) -> None:
        self._sessions = sessions
        self.chain = chain

    async def append(
        self,
        session: AsyncSession,
        kind: str,
        *,
        actor: str,
        channel: str,
        organisation_id: int | None,
        data: dict[str, Any],
    ) -> AuditRecord:
        head = await self._head(session)
        record = AuditRecord(
            dpia_id=self.chain,
            position=head.count + 1,
            kind=kind,
            actor=actor,
            channel=channel,
            section=None,
            seq=0,
            at=datetime.now(UTC),
            data=encode_data(data),
            prev_hash=head.head or GENESIS,
        )
        chained = record.chained()
        session.add(
            AdminAuditEvent(
                chain=self.chain,
                position=chained.position,
                organisation_id=organisation_id,
                kind=chained.kind,
                actor=chained.actor,
                channel=chained.channel,
                at=chained.at,
                data=chained.data,
                prev_hash=chained.prev_hash,
                hash=chained.hash,
                content_hash=chained.content_hash,
            )
        )
        head.count = chained.position
        head.head = chained.hash
        return chained

    async def redact(
        self,
        session: AsyncSession,
        rewrite: Callable[[str], str],
        *,
        actor: str,
        channel: str,
        details: dict[str, Any],
    ) -> list[int]:
        """Rewrite the actor and data of every event of the chain through ``rewrite`` (in the
        caller's transaction) and append one erasure event naming what changed, as
        ``AuditTrail.redact`` does for a DPIA's chain; the redacted positions. The erasure
        belongs to no organisation: it is the deployment's act."""
        await self.lock(session)
        rows = (
            await session.scalars(
                select(AdminAuditEvent)
                .where(AdminAuditEvent.chain == self.chain)
                .order_by(AdminAuditEvent.position, AdminAuditEvent.id)
            )
        ).all()
        redacted = await redact_rows(session, rows, rewrite)
        await self.append(
            session,
            ERASURE,
            actor=actor,
            channel=channel,
            organisation_id=None,
            data=erasure_data(redacted, **details),
        )
        return sorted(redacted)

    async def lock(self, session: AsyncSession) -> None:
        """Lock the chain's head for the rest of ``session``'s transaction (so that
        administrative changes take turns)."""
        await self._head(session)

    async def _head(self, session: AsyncSession) -> AuditChain:
        query = (
            select(AuditChain)
            .where(AuditChain.chain == self.chain)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        head = (await session.execute(query)).scalar_one_or_none()
        if head is None:
            try:
                async with session.begin_nested():
                    session.add(AuditChain(chain=self.chain, count=0, head=""))
            except IntegrityError:
                pass  # another transaction made it first: lock theirs
            head = (await session.execute(query)).scalar_one()
        return head

    async def entries(self, organisation_id: int | None = None) -> list[AuditEntry]:
        """The chain in order; only one organisation's events when ``organisation_id``."""
        query = select(AdminAuditEvent).where(AdminAuditEvent.chain == self.chain)
        if organisation_id is not None:
            query = query.where(AdminAuditEvent.organisation_id == organisation_id)
        async with self._sessions() as session:
            rows = await session.scalars(
                query.order_by(AdminAuditEvent.position, AdminAuditEvent.id)
            )
            return [AuditEntry(row.id, _record(row)) for row in rows]

    async def verify(self) -> BrokenLink | None:
        """The first broken link of the chain, or None if it holds."""
        async with self._sessions() as session:
            head = await session.get(AuditChain, self.chain)
            count, last = (head.count, head.head) if head is not None else (0, "")
        entries = await self.entries()
        return verify([(e.id, e.record) for e in entries], count, last)


def _record(row: AdminAuditEvent) -> AuditRecord:
    return AuditRecord(
        dpia_id=row.chain,
        position=row.position,
        kind=row.kind,
        actor=row.actor,
        channel=row.channel,
        section=None,
        seq=0,
        at=row.at,
        data=row.data,
        prev_hash=row.prev_hash,
        hash=row.hash,
        content_hash=row.content_hash,
    )
