"""The decisions on a DPIA's proposed risks, one row each (``risk_decisions``, 0021).

Concurrency contract: a proposal is decided once, by whichever process stores its decision
first. A decision takes the next *round* of its risk (how many decisions on it came
before: ``domain.catalogue.next_round``), and (DPIA, risk, round) is the table's primary
key, so of two people deciding the same proposal at the same instant, on one process or on
two sharing the database, the second insert fails and that person is told who decided
(``Conflict``, HTTP 409). No lock is held between reading the proposals and storing the
decision: the key is the guard.

An acceptance is stored (``claim``) before its rows are written into the document, so that
the loser of a race writes nothing; ``settle`` then records the register row it became
and chains the audit event; ``withdraw`` removes a claim whose rows could not be written.
A dismissal is stored with its audit event in one transaction.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.catalogue import Decision
from server.domain.errors import Conflict
from server.services.audit import AuditTrail
from server.storage.models import RiskDecision


class RiskDecisions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], audit: AuditTrail) -> None:
        self._sessions = sessions
        self._audit = audit

    async def of(self, dpia_id: str) -> list[Decision]:
        """Every decision on the DPIA's proposals; each risk's in round order."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(RiskDecision)
                .where(RiskDecision.dpia_id == dpia_id)
                .order_by(RiskDecision.round, RiskDecision.decided_at, RiskDecision.risk_id)
            )
            return [_decision(row) for row in rows]

    async def claim(
        self, dpia_id: str, title: str, decision: Decision, user_id: int | None
    ) -> None:
        """Store an acceptance before its rows are written; ``Conflict`` if the proposal
        was decided meanwhile (by anyone, on any process)."""
        try:
            async with self._sessions.begin() as session:
                session.add(_row(dpia_id, decision, user_id))
        except IntegrityError:
            raise await self._refused(dpia_id, title, decision) from None

    async def settle(
        self, dpia_id: str, decision: Decision, ref: str, event: dict[str, Any]
    ) -> None:
        """Record the register row a claimed acceptance became, and chain its audit event
        (``AuditTrail.append``'s keyword arguments), in one transaction."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(RiskDecision)
                .where(*_key(dpia_id, decision))
                .values(ref=ref)
                .execution_options(synchronize_session=False)
            )
            await self._audit.append(session, dpia_id, **event)

    async def withdraw(self, dpia_id: str, decision: Decision) -> None:
        """Take back a claimed acceptance whose rows never reached the document."""
        async with self._sessions.begin() as session:
            await session.execute(delete(RiskDecision).where(*_key(dpia_id, decision)))

    async def dismiss(
        self,
        dpia_id: str,
        title: str,
        decision: Decision,
        user_id: int | None,
        event: dict[str, Any],
    ) -> None:
        """Store a dismissal and chain its audit event in one transaction; ``Conflict`` if
        the proposal was decided meanwhile."""
        try:
            async with self._sessions.begin() as session:
                session.add(_row(dpia_id, decision, user_id))
                await session.flush()  # the primary key decides, before the chain is touched
                await self._audit.append(session, dpia_id, **event)
        except IntegrityError:
            raise await self._refused(dpia_id, title, decision) from None

    async def _refused(self, dpia_id: str, title: str, decision: Decision) -> Conflict:
        """Why a decision could not be stored: the one stored first, by its author."""
        async with self._sessions() as session:
            first = await session.get(RiskDecision, (dpia_id, decision.risk_id, decision.round))
        if first is None:  # the other decision was itself withdrawn meanwhile
            return Conflict(wording.risk_already_decided(title, decision.outcome, ""))
        return Conflict(wording.risk_already_decided(title, first.outcome, first.decided_by_name))


def _key(dpia_id: str, decision: Decision) -> tuple[Any, ...]:
    return (
        RiskDecision.dpia_id == dpia_id,
        RiskDecision.risk_id == decision.risk_id,
        RiskDecision.round == decision.round,
    )


def _row(dpia_id: str, decision: Decision, user_id: int | None) -> RiskDecision:
    return RiskDecision(
        dpia_id=dpia_id,
        risk_id=decision.risk_id,
        round=decision.round,
        outcome=decision.outcome,
        grounds=json.dumps(sorted(decision.grounds)),
        reason=decision.reason,
        ref=decision.ref or None,
        decided_by=user_id,
        decided_by_name=decision.actor,
        decided_at=decision.at,
    )


def _decision(row: RiskDecision) -> Decision:
    at = row.decided_at
    return Decision(
        risk_id=row.risk_id,
        outcome=row.outcome,
        grounds=frozenset(str(g) for g in json.loads(row.grounds)),
        actor=row.decided_by_name,
        at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
        reason=row.reason,
        ref=row.ref or "",
        round=row.round,
    )
