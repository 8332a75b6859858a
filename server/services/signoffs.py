"""Sign-offs: records that bind a signer to the exact content they signed.

A sign-off stores the SHA-256 of the canonical content of its target and of everything the
target depends on (``domain.content.bound_sections``), with the document's sequence number.
Its state is read against the document: once the bound content hashes differently, it is
stale, whoever notices first. ``mark_stale`` is what notices on every change event: it
records the staleness, chains it in the audit trail and tells the signer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.changes import ChangeEvent
from server.domain.content import (
    WHOLE,
    Content,
    bound_sections,
    content_hash,
    section_is_empty,
    split_target,
    target_hash,
)
from server.domain.errors import InvalidInput
from server.domain.templates import Template
from server.domain.workflow import (
    SectionState,
    SignOffKind,
    SignOffState,
    effective_section_state,
    signer_policy,
    signing_policy,
)
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import FieldChange, HistoryService, field_changes
from server.services.notifications import NotificationService
from server.storage.models import Dpia, DpiaParty, Membership, Organisation, SignOffRow
from server.storage.models import SectionState as Row

_KIND_LABELS = {kind.value: kind.label for kind in SignOffKind}


@dataclass(frozen=True, slots=True)
class SignOff:
    id: int
    target: str
    kind: SignOffKind
    signer_user_id: int
    signer_participant_id: int
    signer_name: str
    signer_role: str
    signer_organisation: str
    party: str
    decision: str
    conditions: str
    reasons: str
    seq: int
    content_hash: str
    state: SignOffState
    created_at: datetime
    stale_at: datetime | None
    # The party organisation and capacity a party signature or endorsement is for (0015).
    party_organisation_id: int | None = None
    capacity: str = ""

    @property
    def is_valid(self) -> bool:
        return self.state is SignOffState.VALID


def effective_state(row: SignOffRow, current_hash: str) -> SignOffState:
    recorded = SignOffState(row.state)
    if recorded in (SignOffState.REVOKED, SignOffState.SUPERSEDED):
        return recorded
    if recorded is SignOffState.STALE or row.content_hash != current_hash:
        return SignOffState.STALE
    return SignOffState.VALID


class TargetHashes(dict[str, str]):
    """Bound-content hash of each target, computed once per target when first asked."""

    def __init__(self, template: Template, content: Content) -> None:
        super().__init__()
        self._template = template
        self._content = content

    def __missing__(self, target: str) -> str:
        value = self[target] = target_hash(self._template, self._content, target)
        return value


def section_hashes(template: Template, content: Content) -> TargetHashes:
    return TargetHashes(template, content)


class SignOffService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dpias: DpiaService,
        history: HistoryService,
        audit: AuditTrail,
        notifications: NotificationService,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._history = history
        self._audit = audit
        self._notifications = notifications

    async def of_dpia(self, dpia_id: str, *, include_old: bool = True) -> list[SignOff]:
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        hashes = section_hashes(template, current.content)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(SignOffRow).where(SignOffRow.dpia_id == dpia_id).order_by(SignOffRow.id)
                )
            ).all()
        result = [_view(row, effective_state(row, hashes[row.target])) for row in rows]
        if not include_old:
            result = [s for s in result if s.state in (SignOffState.VALID, SignOffState.STALE)]
        return result

    async def sign(
        self,
        user: CurrentUser,
        dpia_id: str,
        *,
        kind: str,
        decision: str,
        target: str = "",
        conditions: str = "",
        reasons: str = "",
    ) -> int:
        access = await self._dpias.access(user, dpia_id)
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        states = await self.section_states(dpia_id, template, current.content)
        async with self._sessions() as session:
            author = await session.scalar(select(Dpia.created_by).where(Dpia.id == dpia_id))
            organisation, party = await _organisation_and_party(session, dpia_id, user)
        signing = signing_policy(
            kind,
            decision,
            target,
            role=access.role,
            status=access.status,
            template=template,
            content=current.content,
            states=states,
            conditions=conditions,
            reasons=reasons,
            is_author=author == user.id,
            party=party,
        )
        signoff_kind, target, chosen = signing.kind, signing.target, signing.decision
        section_of_target = split_target(target)[0]
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            row = SignOffRow(
                dpia_id=dpia_id,
                target=target,
                kind=signoff_kind.value,
                signer_user_id=user.id,
                signer_participant_id=access.participant_id,
                signer_name=user.name,
                signer_role=access.role.value,
                signer_organisation=organisation,
                party=party,
                decision=chosen.value,
                conditions=conditions.strip(),
                reasons=reasons.strip(),
                seq=current.seq,
                content_hash=target_hash(template, current.content, target),
                state=SignOffState.VALID.value,
                created_at=now,
                stale_at=None,
                replaced_by=None,
            )
            session.add(row)
            await session.flush()
            if signoff_kind is SignOffKind.SECTION:
                await _set_state(
                    session,
                    dpia_id,
                    target,
                    SectionState.SIGNED_OFF,
                    content_hash(current.content, [target]),
                    current.seq,
                    "",
                    f"user:{user.id}",
                )
            await self._audit.append(
                session,
                dpia_id,
                "signoff",
                actor=f"user:{user.id}",
                section=section_of_target if target != WHOLE else None,
                seq=current.seq,
                data={
                    "summary": f"{signoff_kind.label}: "
                    f"{wording.target_label(template.sections, target)}: {chosen.made}",
                    "signoff": row.id,
                    "kind": signoff_kind.value,
                    "decision": chosen.value,
                    "hash": row.content_hash,
                    "conditions": row.conditions,
                    "reasons": row.reasons,
                },
            )
        return row.id

    async def reconfirm(self, user: CurrentUser, dpia_id: str, signoff_id: int) -> int:
        """Sign the same thing again over the content as it is now (one action)."""
        old = await self._own(user, dpia_id, signoff_id)
        new_id = await self.sign(
            user,
            dpia_id,
            kind=old.kind,
            decision=old.decision,
            target=old.target,
            conditions=old.conditions,
            reasons=old.reasons,
        )
        async with self._sessions.begin() as session:
            row = await session.get_one(SignOffRow, signoff_id)
            row.state = SignOffState.SUPERSEDED.value
            row.replaced_by = new_id
        return new_id

    async def revoke(self, user: CurrentUser, dpia_id: str, signoff_id: int) -> None:
        await self._own(user, dpia_id, signoff_id)
        async with self._sessions.begin() as session:
            row = await session.get_one(SignOffRow, signoff_id)
            row.state = SignOffState.REVOKED.value
            await self._audit.append(
                session,
                dpia_id,
                "signoff_revoked",
                actor=f"user:{user.id}",
                section=split_target(row.target)[0] if row.target != WHOLE else None,
                data={"summary": f"Revoked sign-off #{row.id}", "signoff": row.id},
            )

    async def _own(self, user: CurrentUser, dpia_id: str, signoff_id: int) -> SignOffRow:
        await self._dpias.access(user, dpia_id)
        async with self._sessions() as session:
            row = await session.get(SignOffRow, signoff_id)
        if row is None or row.dpia_id != dpia_id:
            raise InvalidInput("No such sign-off on this DPIA")
        signer_policy(row.signer_user_id, user.id, SignOffState(row.state)).require()
        return row

    async def diff(self, user: CurrentUser, dpia_id: str, signoff_id: int) -> list[FieldChange]:
        """What changed in the signed content since it was signed."""
        await self._dpias.access(user, dpia_id)
        async with self._sessions() as session:
            row = await session.get(SignOffRow, signoff_id)
        if row is None or row.dpia_id != dpia_id:
            raise InvalidInput("No such sign-off on this DPIA")
        template = await self._history.template_of(dpia_id)
        section = split_target(row.target)[0]
        bound = set(bound_sections(template, row.target if section == row.target else section))
        signed = await self._history.version(dpia_id, row.seq)
        current = await self._history.current(dpia_id)
        return [
            c
            for c in field_changes(template, signed.content, current.content)
            if c.path.split(".", 1)[0] in bound
        ]

    async def mark_stale(self, events: Sequence[ChangeEvent]) -> None:
        """After change events: record and announce sign-offs whose content moved."""
        for dpia_id in sorted({e.document_id for e in events}):
            actor = next(e.actor for e in reversed(events) if e.document_id == dpia_id)
            excerpt = next(e.excerpt for e in reversed(events) if e.document_id == dpia_id)
            await self._mark_stale(dpia_id, actor, excerpt)

    async def _mark_stale(self, dpia_id: str, actor: str, excerpt: str) -> None:
        async with self._sessions() as session:
            if await session.get(Dpia, dpia_id) is None:
                return
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        hashes = section_hashes(template, current.content)
        now = datetime.now(UTC)
        stale: list[tuple[str, int]] = []
        async with self._sessions.begin() as session:
            rows = await session.scalars(
                select(SignOffRow).where(
                    SignOffRow.dpia_id == dpia_id,
                    SignOffRow.state == SignOffState.VALID.value,
                )
            )
            for row in rows:
                if row.content_hash == hashes[row.target]:
                    continue
                row.state = SignOffState.STALE.value
                row.stale_at = now
                stale.append((split_target(row.target)[0], row.signer_participant_id))
                await self._audit.append(
                    session,
                    dpia_id,
                    "signoff_stale",
                    actor=actor,
                    section=split_target(row.target)[0] if row.target != WHOLE else None,
                    seq=current.seq,
                    data={
                        "summary": f"Sign-off #{row.id} "
                        f"({wording.label(_KIND_LABELS, row.kind)}) went stale: its content "
                        "changed after it was signed",
                        "signoff": row.id,
                    },
                )
        for target, participant in stale:
            await self._notifications.record_stale_signoff(
                dpia_id,
                section=target if target != WHOLE else "signoff",
                signers=[participant],
                actor=actor,
                excerpt=excerpt,
            )

    async def section_states(
        self, dpia_id: str, template: Template, content: Content
    ) -> dict[str, SectionState]:
        async with self._sessions() as session:
            rows = {
                r.section: r
                for r in await session.scalars(select(Row).where(Row.dpia_id == dpia_id))
            }
        states = {}
        for section in template.section_ids():
            row = rows.get(section)
            states[section] = effective_section_state(
                SectionState(row.state) if row else None,
                row.content_hash if row else "",
                content_hash(content, [section]),
                section_is_empty(content[section]),
            )
        return states

    async def count_reviewed(self, dpia_ids: Sequence[str]) -> dict[str, int]:
        """Sections recorded reviewed or signed off, per DPIA (dashboard; not re-hashed)."""
        if not dpia_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(Row.dpia_id, func.count())
                .where(
                    Row.dpia_id.in_(list(dpia_ids)),
                    Row.state.in_([SectionState.REVIEWED.value, SectionState.SIGNED_OFF.value]),
                )
                .group_by(Row.dpia_id)
            )
            return {dpia_id: count for dpia_id, count in rows}


async def _set_state(
    session: AsyncSession,
    dpia_id: str,
    section: str,
    state: SectionState,
    section_hash: str,
    seq: int,
    reasons: str,
    actor: str,
) -> None:
    row = await session.get(Row, (dpia_id, section))
    if row is None:
        row = Row(dpia_id=dpia_id, section=section)
        session.add(row)
    row.state = state.value
    row.content_hash = section_hash
    row.seq = seq
    row.reasons = reasons
    row.changed_by = actor
    row.changed_at = datetime.now(UTC)


set_section_state = _set_state


async def _organisation_and_party(
    session: AsyncSession, dpia_id: str, user: CurrentUser
) -> tuple[str, str]:
    """The signer's organisation, and the DPIA party it is (if any)."""
    rows = (
        await session.execute(
            select(Organisation.id, Organisation.name)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.user_id == user.id)
            .order_by(Organisation.id)
        )
    ).all()
    parties = {
        p.organisation_id: p.name
        for p in await session.scalars(select(DpiaParty).where(DpiaParty.dpia_id == dpia_id))
        if p.organisation_id is not None
    }
    for organisation_id, name in rows:
        if organisation_id in parties:
            return name, parties[organisation_id]
    return (rows[0].name if rows else ""), ""


def _view(row: SignOffRow, state: SignOffState) -> SignOff:
    return SignOff(
        id=row.id,
        target=row.target,
        kind=SignOffKind(row.kind),
        signer_user_id=row.signer_user_id,
        signer_participant_id=row.signer_participant_id,
        signer_name=row.signer_name,
        signer_role=row.signer_role,
        signer_organisation=row.signer_organisation,
        party=row.party,
        decision=row.decision,
        conditions=row.conditions,
        reasons=row.reasons,
        seq=row.seq,
        content_hash=row.content_hash,
        state=state,
        created_at=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
        stale_at=row.stale_at,
        party_organisation_id=row.party_organisation_id,
        capacity=row.capacity,
    )
