"""Projects: creating them, what one holds, and starting each step's document.

Who takes part in a project is who takes part in its documents: a user sees a project when
they are a participant of at least one of its documents, and manages it (parties, steps)
when they own one. Someone outside gets DocumentNotFound, never AccessDenied, as for a DPIA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.dpias import DpiaStatus, PartyRole, check_title
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, InvalidInput
from server.domain.people import normalise_email
from server.domain.projects import DocumentKind, higher_role, project_reference
from server.domain.workflow import IgStep, check_ig_step
from server.services.accounts import CurrentUser
from server.services.dpias import NEW_REFERENCE_ATTEMPTS, DpiaService
from server.storage.models import (
    DocumentUpdate,
    Dpia,
    Organisation,
    Participant,
    Project,
    ProjectParty,
)


@dataclass(frozen=True, slots=True)
class ProjectDocument:
    id: str
    kind: DocumentKind
    title: str
    status: DpiaStatus
    role: Role | None  # the viewer's role on it; None: they do not take part in it
    origin_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProjectPartyView:
    id: int
    name: str
    role: PartyRole | str
    organisation_id: int | None


@dataclass(frozen=True, slots=True)
class ProjectView:
    id: str
    title: str
    step: IgStep
    lead_organisation_id: int
    lead_organisation: str
    created_at: datetime
    parties: list[ProjectPartyView]
    documents: list[ProjectDocument]
    can_manage: bool
    adopted_from: str | None
    endorsement_origin: str | None

    def current(self, kind: DocumentKind) -> ProjectDocument | None:
        """The newest document of a kind (a later version replaces an earlier one)."""
        found = [d for d in self.documents if d.kind is kind]
        return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class ProjectPerson:
    """Someone taking part in a project: the highest role they hold in any of its
    documents, and in how many of them they take part."""

    name: str
    email: str
    role: Role
    has_account: bool
    documents: int


@dataclass(frozen=True, slots=True)
class Added:
    """What adding someone (or a party) to a whole project did, document by document."""

    added: list[tuple[str, int]]  # (document, new participant or party id)
    already: list[str]  # documents they already took part in


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    id: str
    title: str
    step: IgStep
    lead_organisation: str
    documents: int


# A party of a new project: name, role, and its organisation here (None: by name only).
NewParty = tuple[str, str, int | None]


@dataclass(frozen=True, slots=True)
class _NewProject:
    title: str
    lead: int
    step: IgStep
    parties: tuple[NewParty, ...]
    adopted_from: str | None
    endorsement_origin: str | None


class ProjectService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dpias: DpiaService) -> None:
        self._sessions = sessions
        self._dpias = dpias

    async def create(self, user: CurrentUser, title: str, lead_organisation_id: int) -> str:
        """A new project at step 1, led by one of the user's organisations as controller,
        with its idea document started and the user its owner."""
        project_id = await self.create_empty(user, title, lead_organisation_id)
        await self._dpias.create(
            user,
            title,
            lead_organisation_id,
            template_id=DocumentKind.IDEA.template_id,
            project_id=project_id,
            kind=DocumentKind.IDEA,
        )
        return project_id

    async def create_empty(
        self,
        user: CurrentUser,
        title: str,
        lead_organisation_id: int,
        *,
        step: IgStep = IgStep.GENERATE_IDEAS,
        parties: Sequence[NewParty] = (),
        adopted_from: str | None = None,
        endorsement_origin: str | None = None,
    ) -> str:
        """A project with no document yet, at ``step``, its lead a controller and the other
        ``parties`` (name, role, organisation id: None for one taking part by name, as an
        import's are; such an entry naming the lead is the lead itself and is skipped)."""
        title = check_title(title)
        if lead_organisation_id not in user.organisation_ids:
            raise InvalidInput("The lead organisation must be one of your organisations")
        new = _NewProject(
            title, lead_organisation_id, step, tuple(parties), adopted_from, endorsement_origin
        )
        for attempt in range(NEW_REFERENCE_ATTEMPTS):
            try:
                return await self._insert(user, new, attempt)
            except IntegrityError:
                continue
        raise Conflict("Could not allocate a reference; try again")

    async def _insert(self, user: CurrentUser, new: _NewProject, skip: int) -> str:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            organisation = await session.get_one(Organisation, new.lead)
            prefix = f"PRJ-{organisation.code}-{now.year}-"
            taken = await session.scalar(
                select(func.count()).select_from(Project).where(Project.id.like(f"{prefix}%"))
            )
            project_id = project_reference(organisation.code, now.year, (taken or 0) + 1 + skip)
            session.add(
                Project(
                    id=project_id,
                    title=new.title,
                    lead_organisation_id=new.lead,
                    step=new.step.value,
                    created_by=user.id,
                    created_at=now,
                    adopted_from=new.adopted_from,
                    endorsement_origin=new.endorsement_origin,
                )
            )
            await session.flush()
            session.add(
                ProjectParty(
                    project_id=project_id,
                    organisation_id=new.lead,
                    name=organisation.name,
                    role=PartyRole.CONTROLLER.value,
                )
            )
            for name, role, organisation_id in new.parties:
                if organisation_id is None and name == organisation.name:
                    continue
                session.add(
                    ProjectParty(
                        project_id=project_id, organisation_id=organisation_id, name=name, role=role
                    )
                )
        return project_id

    async def view(self, user: CurrentUser, project_id: str) -> ProjectView:
        """The project as ``user`` sees it; DocumentNotFound unless they take part."""
        async with self._sessions() as session:
            project = await session.get(Project, project_id)
            if project is None:
                raise DocumentNotFound("There is no such project, or it is not shared with you")
            documents = (
                await session.execute(
                    select(Dpia, Participant.role)
                    .outerjoin(
                        Participant,
                        (Participant.dpia_id == Dpia.id) & (Participant.user_id == user.id),
                    )
                    .where(Dpia.project_id == project_id)
                    .order_by(Dpia.created_at, Dpia.id)
                )
            ).all()
            roles = [Role(role) for _, role in documents if role is not None]
            if not roles:
                raise DocumentNotFound("There is no such project, or it is not shared with you")
            lead = await session.get_one(Organisation, project.lead_organisation_id)
            parties = list(
                await session.scalars(
                    select(ProjectParty)
                    .where(ProjectParty.project_id == project_id)
                    .order_by(ProjectParty.id)
                )
            )
        return ProjectView(
            id=project.id,
            title=project.title,
            step=IgStep(project.step),
            lead_organisation_id=lead.id,
            lead_organisation=lead.name,
            created_at=project.created_at,
            parties=[
                ProjectPartyView(p.id, p.name, _party_role(p.role), p.organisation_id)
                for p in parties
            ],
            documents=[
                ProjectDocument(
                    id=dpia.id,
                    kind=DocumentKind(dpia.kind),
                    title=dpia.title,
                    status=DpiaStatus(dpia.status),
                    role=None if role is None else Role(role),
                    origin_id=dpia.origin_id,
                    created_at=dpia.created_at,
                )
                for dpia, role in documents
            ],
            can_manage=any(role.can_manage for role in roles),
            adopted_from=project.adopted_from,
            endorsement_origin=project.endorsement_origin,
        )

    async def list_for(self, user: CurrentUser, *, step: str = "") -> list[ProjectSummary]:
        """The projects ``user`` takes part in, newest first."""
        query = (
            select(Project, Organisation.name, func.count(func.distinct(Dpia.id)))
            .join(Dpia, Dpia.project_id == Project.id)
            .join(Participant, Participant.dpia_id == Dpia.id)
            .join(Organisation, Organisation.id == Project.lead_organisation_id)
            .where(Participant.user_id == user.id)
            .group_by(Project.id, Organisation.name)
            .order_by(Project.created_at.desc(), Project.id)
        )
        if step:
            query = query.where(Project.step == check_ig_step(step).value)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            ProjectSummary(project.id, project.title, IgStep(project.step), lead, count)
            for project, lead, count in rows
        ]

    async def last_activity(self, project_id: str) -> dict[str, datetime]:
        """Document → when it last changed (its newest update), for the project page."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(DocumentUpdate.document_id, func.max(DocumentUpdate.created_at))
                .join(Dpia, Dpia.id == DocumentUpdate.document_id)
                .where(Dpia.project_id == project_id)
                .group_by(DocumentUpdate.document_id)
            )
            return {document_id: at for document_id, at in rows}

    async def project_of(self, dpia_id: str) -> str | None:
        """The project a document belongs to."""
        async with self._sessions() as session:
            return await session.scalar(select(Dpia.project_id).where(Dpia.id == dpia_id))

    async def start_step(
        self,
        user: CurrentUser,
        project_id: str,
        kind: DocumentKind,
        *,
        initial_state: bytes | None = None,
    ) -> str:
        """Start the document of a step (``initial_state``: what it is drafted with) and
        move the project to that step. A step already started is not started twice."""
        view = await self.view(user, project_id)
        if not view.can_manage:
            raise AccessDenied("Only the project's owners can start a step")
        existing = view.current(kind)
        if existing is not None:
            raise Conflict(f"This project's {kind.step.label} record is started already")
        lead = view.lead_organisation_id
        if lead not in user.organisation_ids:
            lead = next(
                (
                    p.organisation_id
                    for p in view.parties
                    if p.organisation_id in user.organisation_ids
                ),
                None,
            ) or (user.organisation_ids[0] if user.organisation_ids else 0)
        document_id = await self._dpias.create(
            user,
            view.title,
            lead,
            template_id=kind.template_id,
            initial_state=initial_state,
            project_id=project_id,
            kind=kind,
        )
        await self._move(project_id, kind.step)
        return document_id

    async def set_step(self, user: CurrentUser, project_id: str, raw: str) -> IgStep:
        """Say where the project stands (owners)."""
        view = await self.view(user, project_id)
        if not view.can_manage:
            raise AccessDenied("Only the project's owners can say where the project stands")
        step = check_ig_step(raw)
        await self._move(project_id, step)
        return step

    async def people(self, user: CurrentUser, project_id: str) -> list[ProjectPerson]:
        """Everyone taking part in any document of the project, once each (by address),
        in the highest role they hold there."""
        await self.view(user, project_id)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Participant)
                .join(Dpia, Dpia.id == Participant.dpia_id)
                .where(Dpia.project_id == project_id)
                .order_by(Participant.created_at, Participant.id)
            )
            found: dict[str, ProjectPerson] = {}
            for person in rows:
                key = normalise_email(person.email)
                known = found.get(key)
                role = Role(person.role)
                if known is None:
                    found[key] = ProjectPerson(
                        person.name, person.email, role, person.user_id is not None, 1
                    )
                    continue
                highest = higher_role(known.role, role)
                found[key] = ProjectPerson(
                    known.name, known.email, highest, known.has_account, known.documents + 1
                )
        return list(found.values())

    async def add_person(
        self, user: CurrentUser, project_id: str, email: str, role: str, name: str = ""
    ) -> Added:
        """Add someone to every document of the project (owners), by today's invitation
        rules: a person with no account takes part by email, and a lead organisation that
        forbids outside partners is asked document by document."""
        view = await self._managed(user, project_id)
        address = normalise_email(email)
        added: list[tuple[str, int]] = []
        already: list[str] = []
        for document in view.documents:
            if await self._takes_part(document.id, address):
                already.append(document.id)
                continue
            participant_id = await self._dpias.add_participant(
                user, document.id, address, role, name
            )
            added.append((document.id, participant_id))
        if not added:
            raise Conflict(f"Someone with the address {address} already takes part in this project")
        return Added(added, already)

    async def add_party(
        self,
        user: CurrentUser,
        project_id: str,
        role: str,
        *,
        organisation_id: int | None = None,
        name: str = "",
    ) -> Added:
        """An organisation taking part in the whole project: a party of the project (so
        every step started later takes it) and of each document it has now (owners)."""
        view = await self._managed(user, project_id)
        added: list[tuple[str, int]] = []
        already: list[str] = []
        for document in view.documents:
            try:
                party_id = await self._dpias.add_party_unchecked(
                    document.id, role, organisation_id=organisation_id, name=name
                )
            except Conflict:
                already.append(document.id)
                continue
            added.append((document.id, party_id))
        async with self._sessions.begin() as session:
            if organisation_id is not None:
                organisation = await session.get(Organisation, organisation_id)
                name = organisation.name if organisation is not None else name
            exists = await session.scalar(
                select(ProjectParty.id).where(
                    ProjectParty.project_id == project_id, ProjectParty.name == name.strip()
                )
            )
            if exists is not None and not added:
                raise Conflict(f"The organisation {name} is already a party to this project")
            if exists is None:
                session.add(
                    ProjectParty(
                        project_id=project_id,
                        organisation_id=organisation_id,
                        name=name.strip(),
                        role=PartyRole(role).value,
                    )
                )
        return Added(added, already)

    async def _managed(self, user: CurrentUser, project_id: str) -> ProjectView:
        view = await self.view(user, project_id)
        if not view.can_manage:
            raise AccessDenied("Only the project's owners can add people or organisations to it")
        return view

    async def _takes_part(self, document_id: str, address: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(Participant.id).where(
                    Participant.dpia_id == document_id,
                    func.lower(Participant.email) == address,
                )
            )
        return found is not None

    async def _move(self, project_id: str, step: IgStep) -> None:
        async with self._sessions.begin() as session:
            project = await session.get_one(Project, project_id)
            project.step = step.value


def _party_role(raw: str) -> PartyRole | str:
    try:
        return PartyRole(raw)
    except ValueError:
        return raw  # a role added later (the reviewing body's)
