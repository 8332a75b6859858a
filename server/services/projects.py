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
from server.domain.projects import DocumentKind, project_reference
from server.domain.workflow import IgStep, check_ig_step
from server.services.accounts import CurrentUser
from server.services.dpias import NEW_REFERENCE_ATTEMPTS, DpiaService
from server.storage.models import Dpia, Organisation, Participant, Project, ProjectParty


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
class ProjectSummary:
    id: str
    title: str
    step: IgStep
    lead_organisation: str
    documents: int


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
        parties: Sequence[tuple[str, str]] = (),
        adopted_from: str | None = None,
        endorsement_origin: str | None = None,
    ) -> str:
        """A project with no document yet, at ``step``, its lead a controller and the other
        ``parties`` (name, role) taking part by name (an import: no organisation here)."""
        title = check_title(title)
        if lead_organisation_id not in user.organisation_ids:
            raise InvalidInput("The lead organisation must be one of your organisations")
        for attempt in range(NEW_REFERENCE_ATTEMPTS):
            try:
                project_id = await self._insert(user, title, lead_organisation_id, attempt)
                break
            except IntegrityError:
                continue
        else:
            raise Conflict("Could not allocate a reference; try again")
        async with self._sessions.begin() as session:
            project = await session.get_one(Project, project_id)
            project.step = step.value
            project.adopted_from = adopted_from
            project.endorsement_origin = endorsement_origin
            lead = await session.get_one(Organisation, lead_organisation_id)
            for name, role in parties:
                if name != lead.name:
                    session.add(ProjectParty(project_id=project_id, name=name, role=role))
        return project_id

    async def _insert(self, user: CurrentUser, title: str, lead: int, skip: int) -> str:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            organisation = await session.get_one(Organisation, lead)
            prefix = f"PRJ-{organisation.code}-{now.year}-"
            taken = await session.scalar(
                select(func.count()).select_from(Project).where(Project.id.like(f"{prefix}%"))
            )
            project_id = project_reference(organisation.code, now.year, (taken or 0) + 1 + skip)
            session.add(
                Project(
                    id=project_id,
                    title=title,
                    lead_organisation_id=lead,
                    step=IgStep.GENERATE_IDEAS.value,
                    created_by=user.id,
                    created_at=now,
                )
            )
            await session.flush()
            session.add(
                ProjectParty(
                    project_id=project_id,
                    organisation_id=lead,
                    name=organisation.name,
                    role=PartyRole.CONTROLLER.value,
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

    async def _move(self, project_id: str, step: IgStep) -> None:
        async with self._sessions.begin() as session:
            project = await session.get_one(Project, project_id)
            project.step = step.value


def _party_role(raw: str) -> PartyRole | str:
    try:
        return PartyRole(raw)
    except ValueError:
        return raw  # a role added later (the reviewing body's)
