"""How a new document takes its place in a project (decision 98): its reference, the
project a DPIA made on its own starts, and the parties and people it takes from the project.
Called inside ``DpiaService.create``'s transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.domain.access import Role
from server.domain.dpias import PartyRole, reference
from server.domain.people import normalise_email
from server.domain.projects import (
    DocumentKind,
    document_reference,
    higher_role,
    project_reference_of_dpia,
)
from server.domain.workflow import IgStep
from server.services.accounts import CurrentUser
from server.storage.models import Dpia, DpiaParty, Organisation, Participant, Project, ProjectParty


async def new_reference(
    session: AsyncSession,
    code: str,
    now: datetime,
    kind: DocumentKind,
    project_id: str | None,
    skip: int,
) -> str:
    """A DPIA's ``DPIA-<ORG>-<YEAR>-<N>``; another step's ``<project>-<STEP>`` (``-2`` and
    on for a later version of it)."""
    if kind is DocumentKind.DPIA or project_id is None:
        prefix = f"DPIA-{code}-{now.year}-"
        taken = await session.scalar(
            select(func.count()).select_from(Dpia).where(Dpia.id.like(f"{prefix}%"))
        )
        return reference(code, now.year, (taken or 0) + 1 + skip)
    base = document_reference(project_id, kind)
    taken = await session.scalar(
        select(func.count())
        .select_from(Dpia)
        .where(Dpia.project_id == project_id, Dpia.kind == kind.value)
    )
    number = (taken or 0) + 1 + skip
    return base if number == 1 else f"{base}-{number}"


def own_project(
    session: AsyncSession,
    user: CurrentUser,
    dpia_id: str,
    title: str,
    organisation: Organisation,
    now: datetime,
) -> str:
    """The project a DPIA created on its own starts: at step 4, its lead a controller."""
    project_id = project_reference_of_dpia(dpia_id)
    session.add(
        Project(
            id=project_id,
            title=title,
            lead_organisation_id=organisation.id,
            step=IgStep.CO_CREATE_DPIA.value,
            created_by=user.id,
            created_at=now,
        )
    )
    session.add(
        ProjectParty(
            project_id=project_id,
            organisation_id=organisation.id,
            name=organisation.name,
            role=PartyRole.CONTROLLER.value,
        )
    )
    return project_id


async def join_project(
    session: AsyncSession, user: CurrentUser, dpia_id: str, project_id: str, now: datetime
) -> None:
    """The new document's parties are the project's; its people are everyone taking part
    in the project's other documents, each in the highest role they hold there, and the
    creator is an owner."""
    for party in await session.scalars(
        select(ProjectParty).where(ProjectParty.project_id == project_id)
    ):
        session.add(
            DpiaParty(
                dpia_id=dpia_id,
                organisation_id=party.organisation_id,
                name=party.name,
                role=party.role,
            )
        )
    people: dict[str, Participant] = {}
    rows = await session.scalars(
        select(Participant)
        .join(Dpia, Dpia.id == Participant.dpia_id)
        .where(Dpia.project_id == project_id, Participant.dpia_id != dpia_id)
        .order_by(Participant.created_at)
    )
    for person in rows:
        key = normalise_email(person.email)
        known = people.get(key)
        if known is None or higher_role(Role(known.role), Role(person.role)) != known.role:
            people[key] = person
    people.pop(normalise_email(user.email), None)
    session.add(
        Participant(
            dpia_id=dpia_id,
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=Role.OWNER.value,
            invited_by=None,
            created_at=now,
        )
    )
    for person in people.values():
        session.add(
            Participant(
                dpia_id=dpia_id,
                user_id=person.user_id,
                email=person.email,
                name=person.name,
                role=person.role,
                invited_by=user.id,
                created_at=now,
            )
        )
