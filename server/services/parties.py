"""Sign-off by every party, reviewing bodies' endorsements and reminders to sign (issue 16;
docs/projects.md). Endorsed agreements and adopting one are ``services.adoption``'s.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.access import Role
from server.domain.content import WHOLE, target_hash
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, DpiaLocked, InvalidInput
from server.domain.parties import (
    REVIEWER,
    REVIEWING_BODY,
    Capacity,
    Party,
    RequiredSignature,
    Signature,
    SignatureState,
    SigningChoice,
    all_signed,
    choose_signing,
    endorsement_decision,
    health_data_of,
    parse_capacities,
    party_decision,
    reminder_due,
    reviewing_member,
    signature_status,
    signing_options,
)
from server.domain.projects import DocumentKind
from server.domain.workflow import SignOffKind, SignOffState, signable
from server.mail.compose import Outgoing, compose, new_message_id
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.outbox import enqueue
from server.services.projects import ProjectService, ProjectView
from server.services.signoffs import SignOff, SignOffService
from server.storage.models import (
    Dpia,
    DpiaParty,
    Membership,
    Organisation,
    Participant,
    Project,
    ProjectParty,
    SignOffReminder,
    SignOffRow,
    User,
)
from server.storage.updates import SqlUpdateStore

# The documents every party signs: the DPIA and the ISA.
SIGNED_KINDS = (DocumentKind.DPIA, DocumentKind.ISA)


@dataclass(frozen=True, slots=True)
class DocumentSignOffs:
    """One document's party signatures and endorsements, as ``status`` reports them."""

    document_id: str
    kind: DocumentKind
    title: str
    locked: bool
    required: list[RequiredSignature]
    endorsements: list[SignOff]  # valid or stale, newest last
    reminded: dict[str, datetime]  # address → when last reminded

    @property
    def approved(self) -> bool:
        return all_signed(self.required)

    @property
    def outstanding(self) -> list[RequiredSignature]:
        return [r for r in self.required if r.state is not SignatureState.SIGNED]

    @property
    def endorsement(self) -> SignOff | None:
        """The reviewing body's latest word (valid or stale)."""
        return self.endorsements[-1] if self.endorsements else None

    @property
    def last_reminded(self) -> datetime | None:
        return max(self.reminded.values(), default=None)

    def for_party(self, organisation_id: int | None, name: str) -> list[RequiredSignature]:
        return [
            r
            for r in self.required
            if r.party.organisation_id == organisation_id and r.party.name == name
        ]


@dataclass(frozen=True, slots=True)
class ProjectSignOffs:
    """A project's sign-off status across its DPIA and ISA, and what the viewer may do."""

    project_id: str
    title: str
    parties: list[Party]
    documents: list[DocumentSignOffs]
    can_remind: bool
    options: list[SigningChoice]  # the party and capacity pairs the viewer may sign for
    reviewing_party: Party | None  # the reviewing body the viewer endorses for
    adopted_from: str | None
    endorsement_origin: dict[str, Any] | None

    @property
    def approved(self) -> bool:
        """Approved: it has a DPIA or an ISA, and every one it has is approved."""
        return bool(self.documents) and all(d.approved for d in self.documents)

    def document(self, kind: DocumentKind) -> DocumentSignOffs | None:
        return next((d for d in self.documents if d.kind is kind), None)

    @property
    def signing_parties(self) -> list[Party]:
        return [p for p in self.parties if p.role != REVIEWING_BODY]

    @property
    def reviewing_bodies(self) -> list[Party]:
        return [p for p in self.parties if p.role == REVIEWING_BODY]


@dataclass(frozen=True, slots=True)
class Outstanding:
    """A signature waiting for a person: the document, the party and the capacity."""

    project_id: str
    project_title: str
    document_id: str
    kind: DocumentKind
    party: str
    party_organisation_id: int
    capacity: Capacity
    stale: bool


@dataclass(frozen=True, slots=True)
class Reminded:
    # (document, address) pairs: written to now, or reminded in the last day already
    sent: list[tuple[str, str]] = field(default_factory=list)
    not_due: list[tuple[str, str]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # parties with nobody to write to


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
        self._base = base_url.rstrip("/")
        self._mail_from = mail_from
        self._domain = urlsplit(self._base).hostname or "opendpia.localhost"
        self._on_queued = on_queued

    # -- status ------------------------------------------------------------------------------

    async def status(self, user: CurrentUser, project_id: str) -> ProjectSignOffs:
        """Who has signed what for every party of the project, on its DPIA and ISA, and what
        the viewer may sign; DocumentNotFound unless they take part in the project."""
        view = await self._projects.view(user, project_id)
        parties = _parties(view)
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
        return await self._document_status(current.id, kind, _parties(view))

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
                r.address: _aware(r.sent_at)
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
                document = await self._document_status(current.id, kind, _parties(view))
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
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            org = await session.get_one(Organisation, organisation_id)
            session.add(
                ProjectParty(
                    project_id=project_id,
                    organisation_id=org.id,
                    name=org.name,
                    role=REVIEWING_BODY,
                )
            )
            members = (
                await session.execute(
                    select(User.id, User.email, User.name)
                    .join(Membership, Membership.user_id == User.id)
                    .where(Membership.organisation_id == org.id, User.active.is_(True))
                )
            ).all()
            for document in view.documents:
                session.add(
                    DpiaParty(
                        dpia_id=document.id,
                        organisation_id=org.id,
                        name=org.name,
                        role=REVIEWING_BODY,
                    )
                )
                present = set(
                    await session.scalars(
                        select(Participant.user_id).where(Participant.dpia_id == document.id)
                    )
                )
                for member_id, email, name in members:
                    if member_id in present:
                        continue
                    session.add(
                        Participant(
                            dpia_id=document.id,
                            user_id=member_id,
                            email=email,
                            name=name,
                            role=Role.COMMENTER.value,
                            invited_by=user.id,
                            created_at=now,
                        )
                    )

    async def reviewing_bodies(self) -> list[tuple[int, str]]:
        """The organisations marked reviewing bodies (id, name), for an owner to invite."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Organisation.id, Organisation.name)
                .where(Organisation.reviewing_body.is_(True))
                .order_by(Organisation.name)
            )
            return [(i, n) for i, n in rows]

    # -- reminders ---------------------------------------------------------------------------

    async def remind(self, user: CurrentUser, project_id: str) -> Reminded:
        """Owners remind every outstanding signatory (members of the party's organisation
        holding the capacity) by email, at most once a day per person and document."""
        status = await self.status(user, project_id)
        if not status.can_remind:
            raise DocumentNotFound("There is no such project, or it is not shared with you")
        result = Reminded()
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            for document in status.documents:
                if document.locked:
                    continue
                for required in document.outstanding:
                    people = await _signatories(
                        session, required.party.organisation_id, required.capacity
                    )
                    if not people:
                        result.unreachable.append(required.party.name)
                    for email, name in people:
                        await self._remind_one(
                            session, user, status, document, required, email, name, now, result
                        )
        if result.sent:
            self._on_queued()
        return result

    async def _remind_one(
        self,
        session: AsyncSession,
        user: CurrentUser,
        status: ProjectSignOffs,
        document: DocumentSignOffs,
        required: RequiredSignature,
        email: str,
        name: str,
        now: datetime,
        result: Reminded,
    ) -> None:
        key = (document.document_id, email)
        if key in result.sent or key in result.not_due:
            return  # one email per person and document, whatever roles they hold
        row = await session.get(SignOffReminder, key)
        if row is not None and not reminder_due(_aware(row.sent_at), now):
            result.not_due.append(key)
            return
        link = f"{self._base}/projects/{status.project_id}/sign-off"
        text = (
            f"Dear {name},\n\n{user.name} asks you to sign {document.title} "
            f"({document.document_id}) for {required.party.name} as "
            f"{required.capacity.label}.\n\nRead it and sign: {link}\n"
        )
        message_id = new_message_id(self._domain, "remind")
        mail = Outgoing(
            sender=self._mail_from,
            recipient=email,
            recipient_name=name,
            subject=f"Please sign: {document.title}"[:200],
            text=text,
            html=None,
            message_id=message_id,
        )
        enqueue(
            session,
            sender=parseaddr(self._mail_from)[1],
            recipient=email,
            message=compose(mail, installation=self._domain),
            message_id=message_id,
            dpia_id=document.document_id,
            subject=mail.subject,
        )
        if row is None:
            session.add(
                SignOffReminder(
                    dpia_id=document.document_id,
                    address=email,
                    sent_at=now,
                    sent_by=f"user:{user.id}",
                )
            )
        else:
            row.sent_at, row.sent_by = now, f"user:{user.id}"
        result.sent.append(key)

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
        async with self._sessions() as session:
            return set(
                await session.scalars(
                    select(Organisation.id).where(Organisation.reviewing_body.is_(True))
                )
            )

    async def _document_parties(self, document_id: str) -> list[Party]:
        async with self._sessions() as session:
            project_id = await session.scalar(select(Dpia.project_id).where(Dpia.id == document_id))
            rows = await session.scalars(
                select(ProjectParty)
                .where(ProjectParty.project_id == project_id)
                .order_by(ProjectParty.id)
            )
            return [Party(p.id, p.organisation_id, p.name, p.role) for p in rows]


async def _signatories(
    session: AsyncSession, organisation_id: int | None, capacity: Capacity
) -> list[tuple[str, str]]:
    """The active members of an organisation who hold ``capacity`` (email, name)."""
    if organisation_id is None:
        return []
    rows = await session.execute(
        select(User.email, User.name, Membership.signatory_roles)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == organisation_id, User.active.is_(True))
        .order_by(User.email)
    )
    return [(email, name) for email, name, raw in rows if capacity in parse_capacities(raw)]


def _parties(view: ProjectView) -> list[Party]:
    return [Party(p.id, p.organisation_id, p.name, str(p.role)) for p in view.parties]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
