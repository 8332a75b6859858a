"""The review workflow of sections and the life of a DPIA, with the gates of dpia-model.md.

Every move is checked here, on the server, against the mover's role on the DPIA and the
state of the content and the sign-offs; each one is chained in the audit trail and
announced through ``NotificationService.record_status_change``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.content import content_hash
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import InvalidInput
from server.domain.protection import closed_at_after
from server.domain.risk import residual_high_risks_of
from server.domain.wording import section_title
from server.domain.workflow import (
    Decision,
    IgStep,
    SectionState,
    SignOffKind,
    Transition,
    awaiting_review,
    ig_step_policy,
    next_steps,
    section_step_policy,
    transition,
)
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.notifications import NotificationService
from server.services.signoffs import SignOff, SignOffService, set_section_state
from server.storage.models import Dpia, DpiaParty, Membership, Participant, Project

_APPROVING = {Decision.APPROVE.value, Decision.APPROVE_WITH_CONDITIONS.value}
_STANDING = {
    DpiaStatus.APPROVED,
    DpiaStatus.APPROVED_WITH_CONDITIONS,
    DpiaStatus.IN_FORCE,
    DpiaStatus.UNDER_REVIEW,
}


@dataclass(frozen=True, slots=True)
class Overview:
    """Everything the workflow page shows."""

    dpia_id: str
    title: str
    status: DpiaStatus
    role: Role
    ig_step: IgStep
    sections: dict[str, SectionState]
    signoffs: list[SignOff]
    next_steps: list[Transition]
    residual_high: list[str]
    origin_id: str | None
    seq: int
    items: list[tuple[str, str]]  # (target, label) of each risk and measure, to sign as items


class WorkflowService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dpias: DpiaService,
        history: HistoryService,
        signoffs: SignOffService,
        audit: AuditTrail,
        notifications: NotificationService,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._history = history
        self._signoffs = signoffs
        self._audit = audit
        self._notifications = notifications

    async def overview(self, user: CurrentUser, dpia_id: str) -> Overview:
        access = await self._dpias.access(user, dpia_id)
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        async with self._sessions() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            step = await session.scalar(select(Project.step).where(Project.id == dpia.project_id))
        return Overview(
            dpia_id,
            access.title,
            access.status,
            access.role,
            IgStep(step or dpia.ig_step),
            await self._signoffs.section_states(dpia_id, template, current.content),
            await self._signoffs.of_dpia(dpia_id),
            next_steps(access.status, access.role),
            residual_high_risks_of(template.content, current.content),
            dpia.origin_id,
            current.seq,
            [
                (
                    f"{section}.{field}:{row.get('ref')}",
                    f"{row.get('ref')}: {row.get('title') or ''}",
                )
                for section, field in (("risks", "register"), ("measures", "plan"))
                for row in current.content.get(section, {}).get(field) or []
                if isinstance(row, dict) and row.get("ref")
            ],
        )

    async def lock_reason(self, dpia_id: str) -> str | None:
        """Why the DPIA's content may not change, or None (rooms ask when they load; reading
        the state also makes the DPIA's template loadable in this process)."""
        state = await self._dpias.state(dpia_id)
        if state is None or not state.status.is_locked:
            return None
        return locked_message(state.status)

    async def section(
        self, user: CurrentUser, dpia_id: str, section: str, action: str, reasons: str = ""
    ) -> SectionState:
        access = await self._dpias.access(user, dpia_id)
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        states = await self._signoffs.section_states(dpia_id, template, current.content)
        new_state = section_step_policy(
            action, section, states, access.role, access.status, reasons
        )
        async with self._sessions.begin() as session:
            await set_section_state(
                session,
                dpia_id,
                section,
                new_state,
                content_hash(current.content, [section]),
                current.seq,
                reasons.strip(),
                f"user:{user.id}",
            )
            await self._audit.append(
                session,
                dpia_id,
                "section",
                actor=f"user:{user.id}",
                section=section,
                seq=current.seq,
                data={
                    "summary": f"{section_title(template.sections, section)}: "
                    f"{states[section].label.lower()} → {new_state.label.lower()}"
                    + (f". {reasons.strip()}" if reasons else ""),
                    "from": states[section].value,
                    "to": new_state.value,
                    "reasons": reasons.strip(),
                },
            )
        return new_state

    async def set_ig_step(self, user: CurrentUser, dpia_id: str, step: str) -> IgStep:
        access = await self._dpias.access(user, dpia_id)
        chosen = ig_step_policy(access.role, step)
        async with self._sessions.begin() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            # The project's step is the one source of truth (decision 99): the DPIA's own
            # column keeps the step of its kind and is no longer read.
            project = await session.get(Project, dpia.project_id or "")
            if project is None:  # a document outside any project (none since migration 0015)
                old, dpia.ig_step = dpia.ig_step, chosen.value
            else:
                old, project.step = project.step, chosen.value
            await self._audit.append(
                session,
                dpia_id,
                "ig_step",
                actor=f"user:{user.id}",
                data={"summary": f"IG process step: {IgStep(old).label} → {chosen.label}"},
            )
        return chosen

    async def move(
        self, user: CurrentUser, dpia_id: str, target: str, reasons: str = ""
    ) -> DpiaStatus:
        """Move the DPIA to ``target`` if the rules and gates allow it."""
        access = await self._dpias.access(user, dpia_id)
        chosen = transition(access.status, target, access.role, reasons)
        await self._gate(dpia_id, chosen.target)
        actor = f"user:{user.id}"
        current = await self._history.current(dpia_id)
        superseded: tuple[str, str] | None = None
        async with self._sessions.begin() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            if DpiaStatus(dpia.status) is not access.status:
                raise InvalidInput("The DPIA moved meanwhile; reload and try again")
            dpia.status = chosen.target.value
            dpia.closed_at = closed_at_after(chosen.target, dpia.closed_at, datetime.now(UTC))
            await self._audit.append(
                session,
                dpia_id,
                "status",
                actor=actor,
                seq=current.seq,
                data={
                    "summary": f"{access.status.label} → {chosen.target.label}"
                    + (f". {reasons.strip()}" if reasons.strip() else ""),
                    "from": access.status.value,
                    "to": chosen.target.value,
                    "reasons": reasons.strip(),
                },
            )
            if chosen.target in (DpiaStatus.APPROVED, DpiaStatus.APPROVED_WITH_CONDITIONS):
                superseded = await self._supersede_origin(session, dpia, actor)
        await self._notifications.record_status_change(
            dpia_id,
            old=access.status.value,
            new=chosen.target.value,
            actor=actor,
            reason=reasons.strip(),
        )
        if superseded is not None:
            origin_id, was = superseded
            await self._notifications.record_status_change(
                origin_id,
                old=was,  # in force, approved, or under review (a review's new version)
                new=DpiaStatus.SUPERSEDED.value,
                actor=actor,
                reason=f"replaced by {dpia_id}",
            )
        return chosen.target

    async def _supersede_origin(
        self, session: AsyncSession, dpia: Dpia, actor: str
    ) -> tuple[str, str] | None:
        """An approved new version replaces the one it was cloned from (rule 7): that one's
        id and the status it had."""
        if dpia.origin_id is None:
            return None
        origin = await session.get(Dpia, dpia.origin_id)
        if origin is None or DpiaStatus(origin.status) not in _STANDING:
            return None
        old = origin.status
        origin.status = DpiaStatus.SUPERSEDED.value
        origin.closed_at = closed_at_after(
            DpiaStatus.SUPERSEDED, origin.closed_at, datetime.now(UTC)
        )
        await self._audit.append(
            session,
            origin.id,
            "status",
            actor=actor,
            data={
                "summary": f"{DpiaStatus(old).label} → Superseded by {dpia.id}",
                "from": old,
                "to": DpiaStatus.SUPERSEDED.value,
                "successor": dpia.id,
            },
        )
        return origin.id, old

    async def _gate(self, dpia_id: str, target: DpiaStatus) -> None:
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        content = current.content
        valid = [s for s in await self._signoffs.of_dpia(dpia_id) if s.is_valid]
        if target is DpiaStatus.DPO_REVIEW:
            states = await self._signoffs.section_states(dpia_id, template, content)
            waiting = awaiting_review(states)
            if waiting:
                raise InvalidInput(
                    "Every section must be reviewed before DPO advice; not yet: "
                    + ", ".join(section_title(template.sections, s) for s in waiting)
                )
        if target in (
            DpiaStatus.AWAITING_APPROVAL,
            DpiaStatus.APPROVED,
            DpiaStatus.APPROVED_WITH_CONDITIONS,
        ):
            await self._need_dpo_advice(dpia_id, valid)
        if target in (DpiaStatus.APPROVED, DpiaStatus.APPROVED_WITH_CONDITIONS):
            high = residual_high_risks_of(template.content, content)
            if high and not _has(valid, SignOffKind.RESIDUAL_RISKS_APPROVED, _APPROVING):
                raise InvalidInput(
                    f"Residual high risk ({', '.join(high)}): it must be reduced, or accepted "
                    "with reasons in a 'residual risks approved' sign-off"
                )
            advice = content.get("dpo_advice", {}).get("advice") or []
            against = [
                r for r in advice if r.get("recommendation") in ("do-not-proceed", "consult-ico")
            ]
            if against and not _has(
                valid, SignOffKind.DPO_ADVICE_DECISION, {Decision.ACCEPT, Decision.OVERRULE}
            ):
                raise InvalidInput(
                    "The DPO advised against proceeding as it stands: accepting or overruling "
                    "that advice is its own signed record (with reasons if overruled)"
                )
            async with self._sessions() as session:
                parties = (
                    await session.scalars(
                        select(DpiaParty).where(
                            DpiaParty.dpia_id == dpia_id,
                            DpiaParty.role.in_(["controller", "joint_controller"]),
                        )
                    )
                ).all()
            approved = {
                s.party
                for s in valid
                if s.kind is SignOffKind.PARTY_APPROVAL and s.decision in _APPROVING
            }
            missing = [p.name for p in parties if p.name not in approved]
            if missing:
                raise InvalidInput(
                    "Every controller must approve first; waiting for: " + ", ".join(missing)
                )
        if target is DpiaStatus.IN_FORCE:
            high = residual_high_risks_of(template.content, content)
            outcome = content.get("outcome", {})
            recorded = (
                outcome.get("ico_consultation_date") and outcome.get("ico_reference")
            ) or _has(valid, SignOffKind.PRIOR_CONSULTATION, {Decision.CONSULTED})
            if high and not recorded:
                raise InvalidInput(
                    "A residual high risk was accepted: record the prior consultation with the "
                    "ICO (a 'prior consultation' record, or its date and reference in Outcome "
                    "before approval) before the DPIA can be in force"
                )

    async def _need_dpo_advice(self, dpia_id: str, valid: list[SignOff]) -> None:
        """DPO advice from each party that has a DPO on this DPIA (at least one)."""
        given = {s.party for s in valid if s.kind is SignOffKind.DPO_ADVICE}
        async with self._sessions() as session:
            rows = await session.execute(
                select(DpiaParty.name)
                .join(Membership, Membership.organisation_id == DpiaParty.organisation_id)
                .join(Participant, Participant.user_id == Membership.user_id)
                .where(
                    DpiaParty.dpia_id == dpia_id,
                    Participant.dpia_id == dpia_id,
                    Participant.role == Role.DPO.value,
                )
            )
            with_dpo = {name for (name,) in rows}
        if not given:
            raise InvalidInput("DPO advice is needed first: a DPO of this DPIA signs it")
        missing = sorted(with_dpo - given)
        if missing:
            raise InvalidInput("DPO advice is still needed from: " + ", ".join(missing))


def _has(valid: list[SignOff], kind: SignOffKind, decisions: set[str]) -> bool:
    return any(s.kind is kind and s.decision in decisions for s in valid)
