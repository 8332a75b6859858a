"""Sign-off by every party, reviewing bodies' endorsements and reminders to sign (issue 16;
docs/projects.md). Endorsed agreements and adopting one are ``services.adoption``'s; what
the status reports is ``services.party_status``'s, the reminders' emails
``services.party_reminders``' and what inviting a reviewing body records
``services.reviewing_bodies``'.

A party signature and an endorsement are sign-off rows (``signoffs``) over the whole
document (target ``dpia``), bound to its content hash and made stale by
``SignOffService.mark_stale`` like every other sign-off. They add the party organisation
and the capacity, both read here from the signer's memberships (``domain.parties``
decides). What a project needs, and who has signed, is ``status``; what waits for a person
is ``outstanding_for``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.access import Role
from server.domain.content import WHOLE, target_hash
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, DpiaLocked, InvalidInput
from server.domain.parties import (
    REVIEWER,
    Capacity,
    Party,
    Signature,
    SignatureState,
    choose_signing,
    endorsement_decision,
    health_data_of,
    parse_capacities,
    party_decision,
    reviewing_member,
    signature_status,
    signing_options,
)
from server.domain.projects import DocumentKind
from server.domain.workflow import SignOffKind, SignOffState, signable
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.party_reminders import Reminded, SignOffReminders
from server.services.party_status import (
    SIGNED_KINDS,
    DocumentSignOffs,
    Outstanding,
    ProjectSignOffs,
    aware,
    parties_of,
)
from server.services.projects import ProjectService, ProjectView
from server.services.reviewing_bodies import add_reviewing_body, reviewing_bodies
from server.services.signoffs import SignOffService
from server.storage.models import (
    Dpia,
    Membership,
    Participant,
    Project,
    ProjectParty,
    SignOffReminder,
    SignOffRow,
)
from server.storage.updates import SqlUpdateStore


class PartySignOffService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        dpias: DpiaService,
        projects: ProjectService,
        history: HistoryService,
        signoffs: SignOffService,
        audit: AuditTrail,
        store: SqlUpdateStore,
        base_url: str,
        mail_from: str,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._projects = projects
        self._history = history
        self._signoffs = signoffs
        self._audit = audit
        self._store = store
        self._reminders = SignOffReminders(
            sessions, base_url=base_url, mail_from=mail_from, on_queued=on_queued
        )

    # -- status ------------------------------------------------------------------------------

    async def status(self, user: CurrentUser, project_id: str) -> ProjectSignOffs:
        """Who has signed what for every party of the project, on its DPIA and ISA, and what
        the viewer may sign; DocumentNotFound unless they take part in the project."""
        view = await self._projects.view(user, project_id)
        parties = parties_of(view)
        documents = [await self._document(view, kind) for kind in SIGNED_KINDS]
        held = await self._held(user)
        bodies = await self._reviewing_bodies()
        try:
            reviewing: Party | None = reviewing_member(parties, bodies, user.organisation_ids)
        except AccessDenied:
            reviewing = None
        async with self._sessions() as session:
            project = await session.get_one(Project, project_id)
        return ProjectSignOffs(
            project_id=view.id,
            title=view.title,
            parties=parties,
            documents=[d for d in documents if d is not None],
            can_remind=view.can_manage,
            options=signing_options(parties, held),
            reviewing_party=reviewing,
            adopted_from=project.adopted_from,
            endorsement_origin=json.loads(project.endorsement_origin)
            if project.endorsement_origin
            else None,
        )

    async def _document(self, view: ProjectView, kind: DocumentKind) -> DocumentSignOffs | None:
        current = view.current(kind)
        if current is None:
            return None
        return await self._document_status(current.id, kind, parties_of(view))

    async def _document_status(
        self, document_id: str, kind: DocumentKind, parties: list[Party]
    ) -> DocumentSignOffs:
        template = await self._history.template_of(document_id)
        content = (await self._history.current(document_id)).content
        signoffs = await self._signoffs.of_dpia(document_id)
        signatures = [
            Signature(
                id=s.id,
                party_organisation_id=s.party_organisation_id or 0,
                capacity=s.capacity,
                signer_name=s.signer_name,
                decision=s.decision,
                signed_at=s.created_at,
                valid=s.state is SignOffState.VALID,
                stale=s.state is SignOffState.STALE,
            )
            for s in signoffs
            if s.kind is SignOffKind.PARTY_APPROVAL and s.party_organisation_id and s.capacity
        ]
        async with self._sessions() as session:
            dpia = await session.get_one(Dpia, document_id)
            reminded = {
                r.address: aware(r.sent_at)
                for r in await session.scalars(
                    select(SignOffReminder).where(SignOffReminder.dpia_id == document_id)
                )
            }
        return DocumentSignOffs(
            document_id=document_id,
            kind=kind,
            title=dpia.title,
            locked=not signable(SignOffKind.PARTY_APPROVAL, DpiaStatus(dpia.status)),
            required=signature_status(
                parties, template.content, signatures, health_data=health_data_of(content)
            ),
            endorsements=[
                s
                for s in signoffs
                if s.kind is SignOffKind.ENDORSEMENT
                and s.state in (SignOffState.VALID, SignOffState.STALE)
            ],
            reminded=reminded,
        )

    async def of_document(
        self, user: CurrentUser, document_id: str
    ) -> tuple[str, DocumentSignOffs] | None:
        """A DPIA's or ISA's party signatures (with its project's id), for its own sign-off
        page; None for another kind of document."""
        await self._dpias.access(user, document_id)
        async with self._sessions() as session:
            dpia = await session.get_one(Dpia, document_id)
        if dpia.project_id is None or dpia.kind not in {k.value for k in SIGNED_KINDS}:
            return None
        parties = await self._document_parties(document_id)
        return dpia.project_id, await self._document_status(
            document_id, DocumentKind(dpia.kind), parties
        )

    async def outstanding_for(self, user: CurrentUser) -> list[Outstanding]:
        """The signatures waiting for ``user``: on the DPIAs and ISAs they take part in, for
        a party that is an organisation of theirs, in a capacity they hold there (outstanding
        or stale)."""
        held = {org: caps for org, caps in (await self._held(user)).items() if caps}
        if not held:
            return []
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Dpia.id, Dpia.kind, Dpia.project_id)
                    .join(Participant, Participant.dpia_id == Dpia.id)
                    .join(ProjectParty, ProjectParty.project_id == Dpia.project_id)
                    .where(
                        Participant.user_id == user.id,
                        Dpia.kind.in_([k.value for k in SIGNED_KINDS]),
                        ProjectParty.organisation_id.in_(list(held)),
                    )
                    .distinct()
                    .order_by(Dpia.project_id, Dpia.id)
                )
            ).all()
        waiting: list[Outstanding] = []
        for project_id in dict.fromkeys(r.project_id for r in rows if r.project_id):
            view = await self._projects.view(user, project_id)
            for kind in SIGNED_KINDS:
                current = view.current(kind)
                if current is None or current.role is None or current.status.is_locked:
                    continue
                document = await self._document_status(current.id, kind, parties_of(view))
                for required in document.outstanding:
                    org = required.party.organisation_id
                    if org in held and required.capacity in held[org]:
                        waiting.append(
                            Outstanding(
                                project_id,
                                view.title,
                                current.id,
                                kind,
                                required.party.name,
                                org,
                                required.capacity,
                                required.state is SignatureState.STALE,
                            )
                        )
        return waiting

    # -- signing -----------------------------------------------------------------------------

    async def sign_for_party(
        self,
        user: CurrentUser,
        document_id: str,
        *,
        decision: str,
        organisation_id: int | None = None,
        capacity: str = "",
        reasons: str = "",
    ) -> int:
        """Sign the document for ONE party in ONE capacity, both checked against the signer's
        memberships; a later signature by the same person for the same party and capacity
        supersedes their earlier one. The sign-off's id."""
        access = await self._dpias.access(user, document_id)
        if not signable(SignOffKind.PARTY_APPROVAL, access.status):
            raise DpiaLocked(
                f"This document is {access.status.label.lower()}: "
                "it cannot be signed again; start a new version"
            )
        chosen_decision = party_decision(decision)
        if chosen_decision.value == "reject" and not reasons.strip():
            raise InvalidInput("A rejection needs reasons")
        parties = await self._document_parties(document_id)
        choice = choose_signing(
            parties, await self._held(user), organisation_id=organisation_id, capacity=capacity
        )
        return await self._record(
            user,
            document_id,
            access.participant_id,
            access.role,
            kind=SignOffKind.PARTY_APPROVAL,
            party=choice.party,
            capacity=choice.capacity.value,
            decision=chosen_decision.value,
            reasons=reasons,
        )

    async def endorse(
        self, user: CurrentUser, isa_id: str, *, decision: str, reasons: str = ""
    ) -> int:
        """A reviewing body's endorsement of the ISA (or its withholding, with reasons),
        bound to the ISA's content hash. The sign-off's id."""
        access = await self._dpias.access(user, isa_id)
        async with self._sessions() as session:
            kind = await session.scalar(select(Dpia.kind).where(Dpia.id == isa_id))
        if kind != DocumentKind.ISA.value:
            raise InvalidInput(wording.ENDORSE_ISA_ONLY)
        if not signable(SignOffKind.ENDORSEMENT, access.status):
            raise DpiaLocked(
                f"This agreement is {access.status.label.lower()}: it cannot be endorsed again"
            )
        party = reviewing_member(
            await self._document_parties(isa_id),
            await self._reviewing_bodies(),
            user.organisation_ids,
        )
        chosen = endorsement_decision(decision, reasons)
        return await self._record(
            user,
            isa_id,
            access.participant_id,
            access.role,
            kind=SignOffKind.ENDORSEMENT,
            party=party,
            capacity=REVIEWER,
            decision=chosen.value,
            reasons=reasons,
        )

    async def _record(
        self,
        user: CurrentUser,
        document_id: str,
        participant_id: int,
        role: Role,
        *,
        kind: SignOffKind,
        party: Party,
        capacity: str,
        decision: str,
        reasons: str,
    ) -> int:
        template = await self._history.template_of(document_id)
        current = await self._history.current(document_id)
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            row = SignOffRow(
                dpia_id=document_id,
                target=WHOLE,
                kind=kind.value,
                signer_user_id=user.id,
                signer_participant_id=participant_id,
                signer_name=user.name,
                signer_role=role.value,
                signer_organisation=party.name,
                party=party.name,
                party_organisation_id=party.organisation_id,
                capacity=capacity,
                decision=decision,
                conditions="",
                reasons=reasons.strip(),
                seq=current.seq,
                content_hash=target_hash(template, current.content, WHOLE),
                state=SignOffState.VALID.value,
                created_at=now,
                stale_at=None,
                replaced_by=None,
            )
            session.add(row)
            await session.flush()
            earlier = await session.scalars(
                select(SignOffRow).where(
                    SignOffRow.dpia_id == document_id,
                    SignOffRow.kind == kind.value,
                    SignOffRow.signer_user_id == user.id,
                    SignOffRow.party_organisation_id == party.organisation_id,
                    SignOffRow.capacity == capacity,
                    SignOffRow.id != row.id,
                    SignOffRow.state.in_([SignOffState.VALID.value, SignOffState.STALE.value]),
                )
            )
            for old in earlier:
                old.state = SignOffState.SUPERSEDED.value
                old.replaced_by = row.id
            made = wording.DECISIONS_MADE[decision]
            await self._audit.append(
                session,
                document_id,
                "signoff",
                actor=f"user:{user.id}",
                seq=current.seq,
                data={
                    "summary": f"{kind.label}: {party.name} "
                    f"({wording.label(wording.CAPACITIES, capacity)}): {made}",
                    "signoff": row.id,
                    "kind": kind.value,
                    "decision": decision,
                    "hash": row.content_hash,
                    "party": party.name,
                    "party_organisation_id": party.organisation_id,
                    "capacity": capacity,
                    "reasons": row.reasons,
                },
            )
        return row.id

    # -- reviewing bodies ----------------------------------------------------------------------

    async def invite_reviewing_body(
        self, user: CurrentUser, project_id: str, organisation_id: int
    ) -> None:
        """Owners invite an organisation marked a reviewing body: it becomes a party with
        role ``reviewing_body`` on the project and its documents, and its members take part
        in every document as commenters."""
        view = await self._projects.view(user, project_id)
        if not view.can_manage:
            raise DocumentNotFound("There is no such project, or it is not shared with you")
        if organisation_id not in await self._reviewing_bodies():
            raise InvalidInput("That organisation is not a reviewing body on this deployment")
        if any(p.organisation_id == organisation_id for p in view.parties):
            raise Conflict("That organisation takes part in this project already")
        await add_reviewing_body(
            self._sessions,
            project_id,
            organisation_id,
            [document.id for document in view.documents],
            invited_by=user.id,
        )

    async def reviewing_bodies(self) -> list[tuple[int, str]]:
        """The organisations marked reviewing bodies (id, name), for an owner to invite."""
        return await reviewing_bodies(self._sessions)

    # -- reminders ---------------------------------------------------------------------------

    async def remind(self, user: CurrentUser, project_id: str) -> Reminded:
        """Owners remind every outstanding signatory (members of the party's organisation
        holding the capacity) by email, at most once a day per person and document."""
        status = await self.status(user, project_id)
        if not status.can_remind:
            raise DocumentNotFound("There is no such project, or it is not shared with you")
        return await self._reminders.remind(user, status)

    # -- helpers -------------------------------------------------------------------------------

    async def _held(self, user: CurrentUser) -> dict[int, frozenset[Capacity]]:
        """Organisation id → the capacities the person holds there (every membership)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Membership.organisation_id, Membership.signatory_roles).where(
                    Membership.user_id == user.id
                )
            )
            return {org: parse_capacities(raw) for org, raw in rows}

    async def _reviewing_bodies(self) -> set[int]:
        return {organisation_id for organisation_id, _ in await reviewing_bodies(self._sessions)}

    async def _document_parties(self, document_id: str) -> list[Party]:
        async with self._sessions() as session:
            project_id = await session.scalar(select(Dpia.project_id).where(Dpia.id == document_id))
            rows = await session.scalars(
                select(ProjectParty)
                .where(ProjectParty.project_id == project_id)
                .order_by(ProjectParty.id)
            )
            return [Party(p.id, p.organisation_id, p.name, p.role) for p in rows]
