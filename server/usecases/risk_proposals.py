"""Risks proposed from the template's catalogue, accepted or dismissed by a person.

The proposals are worked out each time from the committed answers and the decisions
(``domain.catalogue``); nothing is stored for a proposal nobody has decided on. Each decision
is an event of the DPIA's audit chain (who, when, the grounds it was taken on and, for a
dismissal, why), so it shows in the history and cannot be quietly changed. Accepting writes
the risk and its suggested measures into the register and the action plan through the room,
as one change attributed to the person (origin ``catalogue:<risk id>``), live in every open
editor.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from pycrdt import Array, Doc, Map

from server.domain.catalogue import (
    ACCEPTED,
    ACCEPTED_EVENT,
    DISMISSED,
    DISMISSED_EVENT,
    Decision,
    NewRows,
    Proposal,
    accepted_rows,
    check_reason,
    pending,
    proposal_for,
    proposals,
)
from server.domain.content import document_content
from server.domain.dpias import locked_message
from server.domain.errors import AccessDenied, DpiaLocked
from server.domain.templates import Template, register_of
from server.realtime.rooms import RoomManager
from server.services.audit import AuditTrail
from server.services.history import HistoryService
from server.usecases.documents import committed
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class RiskProposals:
    history: HistoryService
    audit: AuditTrail
    rooms: RoomManager
    # One decision at a time per DPIA in this process, so that two people accepting the same
    # proposal at once add it once (the second finds it decided).
    _locks: defaultdict[str, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock)
    )

    async def of(self, by: Member) -> list[Proposal]:
        """The catalogue risks relevant to the DPIA's answers now, or decided."""
        template, content = await self._current(by.dpia_id)
        return proposals(template, content, await self.decisions(by.dpia_id))

    async def pending_count(self, by: Member) -> int:
        template, content = await self._current(by.dpia_id)
        if not template.content.get("risk_catalogue"):
            return 0
        return len(pending(proposals(template, content, await self.decisions(by.dpia_id))))

    async def accept(self, by: Member, risk_id: str) -> str:
        """Add a proposed risk and its suggested measures; the new risk's reference."""
        _may_decide(by)
        actor = f"user:{by.user.id}"
        async with self._locks[by.dpia_id]:
            template, content = await self._current(by.dpia_id)
            proposal = proposal_for(
                proposals(template, content, await self.decisions(by.dpia_id)), risk_id
            )
            written: list[NewRows] = []

            def write(doc: Doc[Any]) -> None:
                rows = accepted_rows(template, proposal.risk, document_content(doc, template))
                doc.get(f"table:{rows.register}", type=Array).append(Map(rows.risk))
                if rows.plan is not None:
                    plan = doc.get(f"table:{rows.plan}", type=Array)
                    for measure in rows.measures:
                        plan.append(Map(measure))
                written.append(rows)

            async with self.rooms.borrow(by.dpia_id) as room:
                room.edit(write, actor=actor, channel="browser", origin=f"catalogue:{risk_id}")
                await room.all_saved()
            rows = written[0]
            ref = str(rows.risk["ref"])
            measures = ", ".join(str(m["ref"]) for m in rows.measures)
            await self.audit.record(
                by.dpia_id,
                ACCEPTED_EVENT,
                actor=actor,
                section=rows.register.partition(".")[0],
                data={
                    "summary": f"Accepted the proposed risk “{proposal.risk.title}” as {ref}"
                    + (f", with the suggested measures {measures}" if measures else ""),
                    "risk": risk_id,
                    "ref": ref,
                    "measures": [m["ref"] for m in rows.measures],
                    "grounds": sorted(g.key for g in proposal.grounds),
                    "by": by.user.name,
                },
            )
            return ref

    async def dismiss(self, by: Member, risk_id: str, reason: str) -> None:
        """Record that a proposed risk does not apply, and why (a reason is required)."""
        _may_decide(by)
        why = check_reason(reason)
        async with self._locks[by.dpia_id]:
            template, content = await self._current(by.dpia_id)
            proposal = proposal_for(
                proposals(template, content, await self.decisions(by.dpia_id)), risk_id
            )
            await self.audit.record(
                by.dpia_id,
                DISMISSED_EVENT,
                actor=f"user:{by.user.id}",
                section=_register_section(template),
                data={
                    "summary": f"Dismissed the proposed risk “{proposal.risk.title}”: {why}",
                    "risk": risk_id,
                    "reason": why,
                    "grounds": sorted(g.key for g in proposal.grounds),
                    "by": by.user.name,
                },
            )

    async def decisions(self, dpia_id: str) -> list[Decision]:
        """Every decision on the DPIA's proposals, oldest first, from its audit chain."""
        found = []
        for entry in await self.audit.entries(dpia_id):
            kind = entry.record.kind
            if kind not in (ACCEPTED_EVENT, DISMISSED_EVENT):
                continue
            data = entry.data
            at = entry.record.at
            found.append(
                Decision(
                    risk_id=str(data.get("risk", "")),
                    outcome=ACCEPTED if kind == ACCEPTED_EVENT else DISMISSED,
                    grounds=frozenset(str(g) for g in data.get("grounds") or []),
                    actor=str(data.get("by") or entry.record.actor),
                    at=at if at.tzinfo is not None else at.replace(tzinfo=UTC),
                    reason=str(data.get("reason") or ""),
                    ref=str(data.get("ref") or ""),
                )
            )
        return found

    async def _current(self, dpia_id: str) -> tuple[Template, dict[str, Any]]:
        await committed(self.rooms, dpia_id)
        template = await self.history.template_of(dpia_id)
        return template, (await self.history.current(dpia_id)).content


def _may_decide(by: Member) -> None:
    """Owners and editors decide, on a DPIA that is not read-only."""
    if by.access.status.is_locked:
        raise DpiaLocked(locked_message(by.access.status))
    if not by.access.role.can_write:
        raise AccessDenied("Only owners and editors can accept or dismiss a proposed risk")


def _register_section(template: Template) -> str | None:
    found = register_of(template.content)
    return found[0].partition(".")[0] if found else None
