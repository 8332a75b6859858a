"""Creating, finding and sharing DPIAs; who may see and do what on each.

A user who is not a participant of a DPIA gets DocumentNotFound, never AccessDenied: they
cannot learn that it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pycrdt import Map
from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.administration import outside_partner_policy
from server.domain.documents import UpdateStore
from server.domain.dpias import (
    DpiaStatus,
    PartyRole,
    check_title,
    manage_policy,
    owner_kept_policy,
)
from server.domain.errors import Conflict, DocumentNotFound, InvalidInput
from server.domain.people import check_name, normalise_email
from server.domain.projects import (
    DocumentKind,
)
from server.domain.templates import Template, load_template, seed_update
from server.domain.workflow import IgStep, check_ig_step
from server.services.accounts import CurrentUser
from server.services.admin_audit import ChangeRecorder, log_change
from server.services.project_documents import join_project, new_reference, own_project
from server.services.template_library import TemplateLibrary
from server.storage.models import (
    Document,
    DocumentUpdate,
    Dpia,
    DpiaParty,
    Membership,
    Organisation,
    OrganisationDomain,
    Participant,
    Project,
    SectionReviewer,
    SectionState,
    User,
)

NEW_REFERENCE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class _NewDocument:
    title: str
    lead_organisation_id: int
    template: Template
    first_update: bytes
    origin_id: str | None
    kind: DocumentKind


@dataclass(frozen=True, slots=True)
class DpiaSummary:
    id: str
    title: str
    status: DpiaStatus
    lead_organisation: str
    role: Role
    sections_total: int
    sections_reviewed: int
    last_activity: datetime | None
    origin_id: str | None
    ig_step: IgStep = IgStep.CO_CREATE_DPIA  # the project's step
    kind: DocumentKind = DocumentKind.DPIA  # which step's record the document is
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantView:
    id: int
    name: str
    email: str
    role: Role
    has_account: bool
    organisation: str | None


@dataclass(frozen=True, slots=True)
class PartyView:
    id: int
    name: str
    role: PartyRole
    organisation_id: int | None


@dataclass(frozen=True, slots=True)
class Access:
    """A participant's standing on one DPIA (a user's, or an email-only participant's)."""

    dpia_id: str
    title: str
    participant_id: int
    role: Role
    status: DpiaStatus
    name: str = ""  # the participant's name as shown on the DPIA
    template_id: str = "uk-dpia"
    template_version: int | None = None  # None: the template's newest version here


@dataclass(frozen=True, slots=True)
class DpiaState:
    """What any principal's action on a DPIA depends on, read without a participant."""

    status: DpiaStatus
    template_id: str
    template_version: int | None = None


class DpiaService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: UpdateStore,
        *,
        on_change: ChangeRecorder = log_change,
    ) -> None:
        self._sessions = sessions
        self._store = store
        # The template library (its own service) fills this process's registry of
        # organisations' templates before any DPIA's template is read (decision on it);
        # its changes go to ``on_change``, the administration's audit chain.
        self.templates = TemplateLibrary(sessions, on_change)

    async def create(
        self,
        user: CurrentUser,
        title: str,
        lead_organisation_id: int,
        *,
        template_id: str = "uk-dpia",
        template_version: int | None = None,
        initial_state: bytes | None = None,
        origin_id: str | None = None,
        project_id: str | None = None,
        kind: DocumentKind = DocumentKind.DPIA,
    ) -> str:
        """A new document led by one of the user's organisations; the user is its owner.

        With no ``project_id`` it is a DPIA that starts a project of its own, at step 4.
        In a project it takes the project's parties and people (decision 98)."""
        title = check_title(title)
        if lead_organisation_id not in user.organisation_ids:
            raise InvalidInput("The lead organisation must be one of your organisations")
        template = await self.templates.template(template_id, template_version)
        first_update = initial_state if initial_state is not None else seed_update(template)
        new = _NewDocument(title, lead_organisation_id, template, first_update, origin_id, kind)
        for attempt in range(NEW_REFERENCE_ATTEMPTS):
            try:
                return await self._insert(user, new, project_id, attempt)
            except IntegrityError:
                continue  # that reference is taken (a concurrent DPIA, or a tooling document)
        raise Conflict("Could not allocate a reference; try again")

    async def _insert(
        self, user: CurrentUser, new: _NewDocument, project_id: str | None, skip: int
    ) -> str:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            organisation = await session.get_one(Organisation, new.lead_organisation_id)
            dpia_id = await new_reference(
                session, organisation.code, now, new.kind, project_id, skip
            )
            if project_id is None:
                project_id = own_project(session, user, dpia_id, new.title, organisation, now)
            session.add(
                Document(id=dpia_id, created_at=now, created_by=f"user:{user.id}", last_seq=1)
            )
            await session.flush()
            session.add(
                Dpia(
                    id=dpia_id,
                    title=new.title,
                    lead_organisation_id=new.lead_organisation_id,
                    status=DpiaStatus.DRAFT.value,
                    template_id=new.template.id,
                    template_version=new.template.version,
                    origin_id=new.origin_id,
                    created_by=user.id,
                    created_at=now,
                    project_id=project_id,
                    kind=new.kind.value,
                    ig_step=new.kind.step.value,
                )
            )
            await join_project(session, user, dpia_id, project_id, now)
            # The document is seeded exactly once, as the first entry of its log.
            await session.execute(
                insert(DocumentUpdate).values(
                    document_id=dpia_id,
                    seq=1,
                    update=new.first_update,
                    actor=f"user:{user.id}",
                    channel="browser",
                    origin=f"clone:{new.origin_id}"
                    if new.origin_id
                    else f"template:{new.template.id}",
                    created_at=now,
                )
            )
        return dpia_id

    async def clone(self, user: CurrentUser, source_id: str, title: str, lead: int) -> str:
        """A new DPIA with the content of ``source_id`` (not its discussion), fresh history."""
        await self.access(user, source_id)
        return await self.copy_unchecked(user, source_id, lead, title=title)

    async def copy_unchecked(
        self,
        user: CurrentUser,
        source_id: str,
        lead: int,
        *,
        title: str | None = None,
        project_id: str | None = None,
        kind: DocumentKind | None = None,
    ) -> str:
        """A new document by ``user`` with the content of ``source_id``, its comments left
        behind and a fresh history; its title, project and kind are the original's unless
        given. The caller decides who may copy: ``user`` need not take part in the original."""
        stored = await self._store.load(source_id)
        if stored is None:
            raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
        doc = stored.to_doc()
        comments = doc.get("comments", type=Map)
        with doc.transaction():
            for key in list(comments.keys()):
                del comments[key]
        async with self._sessions() as session:
            source = await session.get_one(Dpia, source_id)
        return await self.create(
            user,
            source.title if title is None else title,
            lead,
            template_id=source.template_id,
            template_version=source.template_version,
            initial_state=doc.get_update(),
            origin_id=source_id,
            project_id=project_id or source.project_id,
            kind=kind or DocumentKind(source.kind),
        )

    async def set_template_version(self, dpia_id: str, version: int) -> None:
        """Record that the DPIA now follows ``version`` of its template (the use case
        ``TemplateMoves`` checks who may, and writes the document's own record of it)."""
        async with self._sessions.begin() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            dpia.template_version = version

    async def access(self, user: CurrentUser, dpia_id: str) -> Access:
        """The user's role on a DPIA; DocumentNotFound if they are not a participant."""
        access = await self._access(Participant.dpia_id == dpia_id, Participant.user_id == user.id)
        if access is None:
            raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
        return access

    async def participant_access(self, participant_id: int) -> Access | None:
        """A participant's standing read by their id (email-only participants have no user);
        None once they are removed."""
        return await self._access(Participant.id == participant_id)

    async def _access(self, *where: ColumnElement[bool]) -> Access | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        Participant.id,
                        Participant.dpia_id,
                        Participant.role,
                        Participant.name,
                        Dpia.title,
                        Dpia.status,
                        Dpia.template_id,
                        Dpia.template_version,
                    )
                    .join(Dpia, Dpia.id == Participant.dpia_id)
                    .where(*where)
                )
            ).first()
        if row is None:
            return None
        await self.templates.ensure(row.template_id, row.template_version)
        return Access(
            row.dpia_id,
            row.title,
            row.id,
            Role(row.role),
            DpiaStatus(row.status),
            row.name,
            row.template_id,
            row.template_version,
        )

    async def state(self, dpia_id: str) -> DpiaState | None:
        """The DPIA's status and template; None for a document with no DPIA record (a
        tooling document, decision 19)."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Dpia.status, Dpia.template_id, Dpia.template_version).where(
                        Dpia.id == dpia_id
                    )
                )
            ).first()
        if row is None:
            return None
        await self.templates.ensure(row.template_id, row.template_version)
        return DpiaState(DpiaStatus(row.status), row.template_id, row.template_version)

    async def origin_of(self, dpia_id: str) -> str | None:
        """The DPIA this one is a new version of, if any."""
        async with self._sessions() as session:
            return await session.scalar(select(Dpia.origin_id).where(Dpia.id == dpia_id))

    async def current_role(
        self, dpia_id: str, *, user_id: int | None = None, participant_id: int | None = None
    ) -> Role | None:
        """The role a user, or a participant named by id, has on a DPIA now (None: none)."""
        if user_id is None and participant_id is None:
            return None
        query = select(Participant.role).where(Participant.dpia_id == dpia_id)
        if user_id is not None:
            query = query.where(Participant.user_id == user_id)
        if participant_id is not None:
            query = query.where(Participant.id == participant_id)
        async with self._sessions() as session:
            role = await session.scalar(query)
        return None if role is None else Role(role)

    async def documents_of(self, user_id: int) -> list[str]:
        """The DPIAs a user takes part in (whose open connections a change to them reaches)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Participant.dpia_id).where(Participant.user_id == user_id)
            )
            return list(rows)

    async def list_for(
        self,
        user: CurrentUser,
        *,
        search: str = "",
        status: str = "",
        organisation_id: int | None = None,
        ig_step: str = "",
    ) -> list[DpiaSummary]:
        last_activity = (
            select(DocumentUpdate.created_at)
            .where(DocumentUpdate.document_id == Dpia.id)
            .order_by(DocumentUpdate.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        reviewed = (
            select(func.count())
            .select_from(SectionState)
            .where(
                SectionState.dpia_id == Dpia.id,
                SectionState.state.in_(["reviewed", "signed_off"]),
            )
            .scalar_subquery()
        )
        query = (
            select(
                Dpia,
                Participant.role,
                Organisation.name,
                last_activity.label("last"),
                reviewed.label("reviewed"),
                Project.step,
            )
            .join(Participant, Participant.dpia_id == Dpia.id)
            .join(Organisation, Organisation.id == Dpia.lead_organisation_id)
            .outerjoin(Project, Project.id == Dpia.project_id)
            .where(Participant.user_id == user.id)
        )
        if search.strip():
            pattern = f"%{search.strip()[:100]}%"
            query = query.where(Dpia.title.ilike(pattern) | Dpia.id.ilike(pattern))
        if status:
            query = query.where(Dpia.status == DpiaStatus(status).value)
        if organisation_id is not None:
            query = query.where(Dpia.lead_organisation_id == organisation_id)
        if ig_step:
            # The project's step (decision 99); the document's own column is not read.
            query = query.where(Project.step == check_ig_step(ig_step).value)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        for row in rows:
            await self.templates.ensure(row[0].template_id, row[0].template_version)
        summaries = [
            DpiaSummary(
                id=dpia.id,
                title=dpia.title,
                status=DpiaStatus(dpia.status),
                lead_organisation=organisation,
                role=Role(role),
                sections_total=len(load_template(dpia.template_id, dpia.template_version).sections),
                # As recorded by the review workflow; an edit since shows on the DPIA's page.
                sections_reviewed=reviewed or 0,
                last_activity=last,
                origin_id=dpia.origin_id,
                ig_step=IgStep(step or dpia.ig_step),
                kind=DocumentKind(dpia.kind),
                project_id=dpia.project_id,
            )
            for dpia, role, organisation, last, reviewed, step in rows
        ]
        summaries.sort(
            key=lambda s: s.last_activity.timestamp() if s.last_activity else 0.0, reverse=True
        )
        return summaries

    async def participants(self, user: CurrentUser, dpia_id: str) -> list[ParticipantView]:
        await self.access(user, dpia_id)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Participant, Organisation.name)
                    .outerjoin(User, User.id == Participant.user_id)
                    .outerjoin(
                        Organisation,
                        Organisation.id
                        == select(func.min(Membership.organisation_id))
                        .where(Membership.user_id == Participant.user_id)
                        .scalar_subquery(),
                    )
                    .where(Participant.dpia_id == dpia_id)
                    .order_by(Participant.created_at)
                )
            ).all()
        return [
            ParticipantView(p.id, p.name, p.email, Role(p.role), p.user_id is not None, org)
            for p, org in rows
        ]

    async def invite(
        self, user: CurrentUser, dpia_id: str, email: str, role: str, name: str = ""
    ) -> int:
        """Add a participant; a person with no account becomes an email-only participant."""
        await self._require_owner(user, dpia_id)
        return await self.add_participant(user, dpia_id, email, role, name)

    async def add_participant(
        self, user: CurrentUser, dpia_id: str, email: str, role: str, name: str = ""
    ) -> int:
        """``invite`` once the caller has decided ``user`` may (a project's owners add a
        person to every document of the project: ``ProjectService.add_person``)."""
        email = normalise_email(email)
        new_role = _role(role)
        async with self._sessions() as session:
            account = await session.scalar(select(User).where(User.email == email))
            await self._outside_partners_checked(session, dpia_id, email, account)
        display = account.name if account else (check_name(name) if name.strip() else email)
        participant = Participant(
            dpia_id=dpia_id,
            user_id=account.id if account else None,
            email=email,
            name=display,
            role=new_role.value,
            invited_by=user.id,
            created_at=datetime.now(UTC),
        )
        try:
            async with self._sessions.begin() as session:
                session.add(participant)
        except IntegrityError:
            raise Conflict(
                f"Someone with the address {email} already takes part in this DPIA"
            ) from None
        return participant.id

    async def _outside_partners_checked(
        self, session: AsyncSession, dpia_id: str, email: str, account: User | None
    ) -> None:
        """Refuse an invitee from outside the parties when the lead organisation forbids
        outside partners (``domain.administration.outside_partner_policy``)."""
        lead_id, allowed = (
            await session.execute(
                select(Organisation.id, Organisation.outside_partners)
                .join(Dpia, Dpia.lead_organisation_id == Organisation.id)
                .where(Dpia.id == dpia_id)
            )
        ).one()
        if allowed:
            return
        parties = await session.scalars(
            select(DpiaParty.organisation_id).where(
                DpiaParty.dpia_id == dpia_id, DpiaParty.organisation_id.is_not(None)
            )
        )
        theirs: list[int] = []
        if account is not None:
            theirs = list(
                await session.scalars(
                    select(Membership.organisation_id).where(Membership.user_id == account.id)
                )
            )
        party_organisations = {lead_id, *(p for p in parties if p is not None)}
        domains = await session.scalars(
            select(OrganisationDomain.domain).where(
                OrganisationDomain.organisation_id.in_(party_organisations)
            )
        )
        outside_partner_policy(
            allowed=False,
            email=email,
            invitee_organisations=theirs,
            party_organisations=party_organisations,
            party_domains=list(domains),
        ).require()

    async def change_role(
        self, user: CurrentUser, dpia_id: str, participant_id: int, role: str
    ) -> None:
        await self._require_owner(user, dpia_id)
        new_role = _role(role)
        async with self._sessions.begin() as session:
            participant = await self._participant(session, dpia_id, participant_id)
            await self._keep_an_owner(session, dpia_id, Role(participant.role), new_role)
            participant.role = new_role.value

    async def remove(self, user: CurrentUser, dpia_id: str, participant_id: int) -> None:
        await self._require_owner(user, dpia_id)
        async with self._sessions.begin() as session:
            participant = await self._participant(session, dpia_id, participant_id)
            await self._keep_an_owner(session, dpia_id, Role(participant.role), None)
            await session.delete(participant)

    async def _require_owner(self, user: CurrentUser, dpia_id: str) -> None:
        manage_policy((await self.access(user, dpia_id)).role).require()

    async def _participant(
        self, session: AsyncSession, dpia_id: str, participant_id: int
    ) -> Participant:
        participant = await session.get(Participant, participant_id)
        if participant is None or participant.dpia_id != dpia_id:
            raise InvalidInput("No such participant on this DPIA")
        return participant

    async def _keep_an_owner(
        self, session: AsyncSession, dpia_id: str, role: Role, new_role: Role | None
    ) -> None:
        if role is not Role.OWNER:
            return  # no need to count
        owners = await session.scalar(
            select(func.count()).where(
                Participant.dpia_id == dpia_id, Participant.role == Role.OWNER.value
            )
        )
        owner_kept_policy(role, new_role, owners or 0).require()

    async def parties(self, user: CurrentUser, dpia_id: str) -> list[PartyView]:
        await self.access(user, dpia_id)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DpiaParty).where(DpiaParty.dpia_id == dpia_id).order_by(DpiaParty.id)
            )
            # A project's reviewing body (role "reviewing_body", issue 16) is no party to the
            # processing: it is shown with the project's sign-offs, not here.
            roles = {r.value for r in PartyRole}
            return [
                PartyView(p.id, p.name, PartyRole(p.role), p.organisation_id)
                for p in rows
                if p.role in roles
            ]

    async def add_party(
        self,
        user: CurrentUser,
        dpia_id: str,
        role: str,
        *,
        organisation_id: int | None = None,
        name: str = "",
    ) -> int:
        """An organisation taking part: a registered one, or another named body."""
        await self._require_owner(user, dpia_id)
        return await self.add_party_unchecked(
            dpia_id, role, organisation_id=organisation_id, name=name
        )

    async def add_party_unchecked(
        self, dpia_id: str, role: str, *, organisation_id: int | None = None, name: str = ""
    ) -> int:
        """``add_party`` once the caller has decided who may (``ProjectService.add_party``)."""
        try:
            party_role = PartyRole(role)
        except ValueError:
            raise InvalidInput(
                f"There is no party role {role[:30]!r}: choose "
                + ", ".join(r.value for r in PartyRole)
            ) from None
        async with self._sessions.begin() as session:
            if organisation_id is not None:
                organisation = await session.get(Organisation, organisation_id)
                if organisation is None:
                    raise InvalidInput("No such organisation")
                name = organisation.name
            else:
                name = check_name(name, "party name")
            exists = await session.scalar(
                select(DpiaParty.id).where(DpiaParty.dpia_id == dpia_id, DpiaParty.name == name)
            )
            if exists is not None:
                raise Conflict(f"The organisation {name} is already a party to this DPIA")
            party = DpiaParty(
                dpia_id=dpia_id,
                organisation_id=organisation_id,
                name=name,
                role=party_role.value,
            )
            session.add(party)
        return party.id

    async def remove_party(self, user: CurrentUser, dpia_id: str, party_id: int) -> None:
        await self._require_owner(user, dpia_id)
        async with self._sessions.begin() as session:
            party = await session.get(DpiaParty, party_id)
            if party is None or party.dpia_id != dpia_id:
                raise InvalidInput("No such party on this DPIA")
            lead = await session.scalar(select(Dpia.lead_organisation_id).where(Dpia.id == dpia_id))
            if party.organisation_id is not None and party.organisation_id == lead:
                raise Conflict("The lead organisation stays a party")
            await session.delete(party)

    async def set_reviewer(
        self, user: CurrentUser, dpia_id: str, section: str, participant_id: int, assigned: bool
    ) -> None:
        """Owners ask a participant to review a section (or stop asking)."""
        access = await self.access(user, dpia_id)
        manage_policy(access.role).require()
        if section not in load_template(access.template_id, access.template_version).section_ids():
            raise InvalidInput(f"This DPIA has no section {section[:40]!r}")
        async with self._sessions.begin() as session:
            await self._participant(session, dpia_id, participant_id)
            row = await session.get(SectionReviewer, (participant_id, section))
            if assigned and row is None:
                session.add(SectionReviewer(participant_id=participant_id, section=section))
            elif not assigned and row is not None:
                await session.delete(row)

    async def reviewers(self, user: CurrentUser, dpia_id: str) -> dict[str, list[int]]:
        """Section id → the participants asked to review it."""
        await self.access(user, dpia_id)
        async with self._sessions() as session:
            rows = await session.execute(
                select(SectionReviewer.section, SectionReviewer.participant_id)
                .join(Participant, Participant.id == SectionReviewer.participant_id)
                .where(Participant.dpia_id == dpia_id)
            )
            result: dict[str, list[int]] = {}
            for section, participant_id in rows:
                result.setdefault(section, []).append(participant_id)
            return result

    async def organisations(self) -> list[tuple[int, str, str]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Organisation.id, Organisation.code, Organisation.name).order_by(
                    Organisation.name
                )
            )
        return [(r.id, r.code, r.name) for r in rows]


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise InvalidInput(
            f"There is no role {raw[:20]!r}: choose {', '.join(r.value for r in Role)}"
        ) from None
