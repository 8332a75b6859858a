"""Risks proposed from the template's catalogue, accepted or dismissed by a person.

The proposals are worked out each time from the committed answers and the decisions
(``domain.catalogue``); nothing is stored for a proposal nobody has decided on. Each decision
is a row of ``risk_decisions`` (``services.risk_decisions``: its key lets a proposal be
decided once, whichever process decides it; the loser of a race gets ``Conflict``) and an
event of the DPIA's audit chain (who, when, the grounds it was taken on and, for a
dismissal, why), so it shows in the history and cannot be quietly changed. Accepting writes
the risk and its suggested measures into the register and the action plan through the room,
as one change attributed to the person (origin ``catalogue:<risk id>``), live in every open
editor, only once the acceptance is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
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
    next_round,
    pending,
    proposal_for,
    proposals,
)
from server.domain.content import document_content
from server.domain.dpias import locked_message
from server.domain.errors import AccessDenied, DpiaLocked
from server.domain.templates import Template, register_of
from server.realtime.rooms import RoomManager
from server.services.history import HistoryService
from server.services.risk_decisions import RiskDecisions
from server.usecases.documents import committed
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class RiskProposals:
    history: HistoryService
    rooms: RoomManager
    decided: RiskDecisions

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
        """Add a proposed risk and its suggested measures; the new risk's reference.
        ``Conflict`` if someone decided it first (nothing is then written)."""
        _may_decide(by)
        actor = actor_of(by)
        template, content = await self._current(by.dpia_id)
        earlier = await self.decisions(by.dpia_id)
        proposal = proposal_for(proposals(template, content, earlier), risk_id)
        decision = _decision(by, proposal, ACCEPTED, earlier)
        await self.decided.claim(by.dpia_id, proposal.risk.title, decision, by.user.id)
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
            try:
                room.edit(write, actor=actor, channel="browser", origin=f"catalogue:{risk_id}")
            except Exception:
                if not written:  # nothing reached the document: the decision did not happen
                    await self.decided.withdraw(by.dpia_id, decision)
                raise
            await room.all_saved()
        rows = written[0]
        ref = str(rows.risk["ref"])
        measures = ", ".join(str(m["ref"]) for m in rows.measures)
        await self.decided.settle(
            by.dpia_id,
            decision,
            ref,
            {
                "kind": ACCEPTED_EVENT,
                "actor": actor,
                "section": rows.register.partition(".")[0],
                "data": {
                    "summary": f"Accepted the proposed risk “{proposal.risk.title}” as {ref}"
                    + (f", with the suggested measures {measures}" if measures else ""),
                    "risk": risk_id,
                    "ref": ref,
                    "measures": [m["ref"] for m in rows.measures],
                    "grounds": sorted(decision.grounds),
                    "by": by.user.name,
                },
            },
        )
        return ref

    async def dismiss(self, by: Member, risk_id: str, reason: str) -> None:
        """Record that a proposed risk does not apply, and why (a reason is required).
        ``Conflict`` if someone decided it first."""
        _may_decide(by)
        why = check_reason(reason)
        template, content = await self._current(by.dpia_id)
        earlier = await self.decisions(by.dpia_id)
        proposal = proposal_for(proposals(template, content, earlier), risk_id)
        decision = _decision(by, proposal, DISMISSED, earlier, reason=why)
        await self.decided.dismiss(
            by.dpia_id,
            proposal.risk.title,
            decision,
            by.user.id,
            {
                "kind": DISMISSED_EVENT,
                "actor": actor_of(by),
                "section": _register_section(template),
                "data": {
                    "summary": f"Dismissed the proposed risk “{proposal.risk.title}”: {why}",
                    "risk": risk_id,
                    "reason": why,
                    "grounds": sorted(decision.grounds),
                    "by": by.user.name,
                },
            },
        )

    async def decisions(self, dpia_id: str) -> list[Decision]:
        """Every decision on the DPIA's proposals (each risk's in the order taken)."""
        return await self.decided.of(dpia_id)

    async def _current(self, dpia_id: str) -> tuple[Template, dict[str, Any]]:
        await committed(self.rooms, dpia_id)
        template = await self.history.template_of(dpia_id)
        return template, (await self.history.current(dpia_id)).content


def actor_of(by: Member) -> str:
    """The person as the update log and the audit chain name them."""
    return f"user:{by.user.id}"


def _decision(
    by: Member, proposal: Proposal, outcome: str, earlier: list[Decision], reason: str = ""
) -> Decision:
    """The decision ``by`` takes now on ``proposal``, in the next round of its risk."""
    return Decision(
        risk_id=proposal.risk.id,
        outcome=outcome,
        grounds=frozenset(g.key for g in proposal.grounds),
        actor=by.user.name,
        at=datetime.now(UTC),
        reason=reason,
        round=next_round(earlier, proposal.risk.id),
    )


def _may_decide(by: Member) -> None:
    """Owners and editors decide, on a DPIA that is not read-only."""
    if by.access.status.is_locked:
        raise DpiaLocked(locked_message(by.access.status))
    if not by.access.role.can_write:
        raise AccessDenied("Only owners and editors can accept or dismiss a proposed risk")


def _register_section(template: Template) -> str | None:
    found = register_of(template.content)
    return found[0].partition(".")[0] if found else None
