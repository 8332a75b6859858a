"""Reviewing bodies (issue 16; docs/projects.md): the organisations a deployment
administrator marks as reviewing forums (as IGfL is), and what inviting one to a project
records. Who may invite one is ``services.parties.PartySignOffService``'s to check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.parties import REVIEWING_BODY
from server.storage.models import (
    DpiaParty,
    Membership,
    Organisation,
    Participant,
    ProjectParty,
    User,
)


async def reviewing_bodies(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, str]]:
    """The organisations marked reviewing bodies (id, name), by name."""
    async with sessions() as session:
        rows = await session.execute(
            select(Organisation.id, Organisation.name)
            .where(Organisation.reviewing_body.is_(True))
            .order_by(Organisation.name)
        )
        return [(i, n) for i, n in rows]


async def add_reviewing_body(
    sessions: async_sessionmaker[AsyncSession],
    project_id: str,
    organisation_id: int,
    document_ids: Sequence[str],
    *,
    invited_by: int,
) -> None:
    """The organisation becomes a party with role ``reviewing_body`` on the project and on
    each of ``document_ids``, and its active members take part in each as commenters."""
    now = datetime.now(UTC)
    async with sessions.begin() as session:
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
        for document_id in document_ids:
            session.add(
                DpiaParty(
                    dpia_id=document_id,
                    organisation_id=org.id,
                    name=org.name,
                    role=REVIEWING_BODY,
                )
            )
            present = set(
                await session.scalars(
                    select(Participant.user_id).where(Participant.dpia_id == document_id)
                )
            )
            for member_id, email, name in members:
                if member_id in present:
                    continue
                session.add(
                    Participant(
                        dpia_id=document_id,
                        user_id=member_id,
                        email=email,
                        name=name,
                        role=Role.COMMENTER.value,
                        invited_by=invited_by,
                        created_at=now,
                    )
                )
