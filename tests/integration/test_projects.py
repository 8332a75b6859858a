"""Projects on SQLite and PostgreSQL: every existing DPIA becomes a project at its step with
its parties (migration 0015); a new project starts at step 1 with its idea; each step's
document takes the project's parties and people."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from server.domain.access import Role
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound
from server.domain.projects import DocumentKind
from server.domain.workflow import IgStep
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.services.projects import ProjectService
from server.storage.database import create_engine, migrate
from server.storage.models import Dpia, DpiaParty, Project, ProjectParty
from server.storage.updates import SqlUpdateStore
from tests.support.legacy import insert_dpia, insert_rows, seed_owner

pytestmark = pytest.mark.asyncio
FAST = password_hasher("fast-for-tests")


@dataclass
class World:
    engine: AsyncEngine
    dpias: DpiaService
    projects: ProjectService
    ann: CurrentUser  # Camden
    bob: CurrentUser  # NHS trust
    cam: int
    nhs: int


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, FAST)
    cam = await accounts.create_organisation("CAM", "London Borough of Camden")
    nhs = await accounts.create_organisation("NLFT", "North London NHS Foundation Trust")
    ann_id = await accounts.create_user("ann@camden.example", "Ann Smith", "pw-ann-123456", "CAM")
    bob_id = await accounts.create_user("bob@nlft.example", "Bob Jones", "pw-bob-123456", "NLFT")
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    try:
        yield World(
            engine,
            dpias,
            ProjectService(sessions, dpias),
            CurrentUser(ann_id, "ann@camden.example", "Ann Smith", (cam,)),
            CurrentUser(bob_id, "bob@nlft.example", "Bob Jones", (nhs,)),
            cam,
            nhs,
        )
    finally:
        await engine.dispose()


async def test_existing_dpias_become_projects_at_their_step_with_their_parties(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url, "0014")
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as connection:
            await seed_owner(connection, now, "o@c.example")
            for dpia_id, step in (
                ("DPIA-CAM-2026-1", "co_create_dpia"),
                ("DPIA-CAM-2026-2", "implement"),
            ):
                await insert_dpia(
                    connection, now, dpia_id, title=f"Title of {dpia_id}", ig_step=step
                )
                await insert_rows(
                    connection,
                    "dpia_parties",
                    dpia_id=dpia_id,
                    organisation_id=1,
                    name="Camden",
                    role="controller",
                )
            await insert_rows(
                connection,
                "dpia_parties",
                dpia_id="DPIA-CAM-2026-2",
                organisation_id=None,
                name="Acme Analytics",
                role="processor",
            )
        await asyncio.to_thread(migrate, database_url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session:
            projects = {p.id: p for p in await session.scalars(select(Project))}
            assert set(projects) == {"PRJ-CAM-2026-1", "PRJ-CAM-2026-2"}
            assert projects["PRJ-CAM-2026-1"].step == "co_create_dpia"
            assert projects["PRJ-CAM-2026-2"].step == "implement"
            assert projects["PRJ-CAM-2026-2"].title == "Title of DPIA-CAM-2026-2"
            rows = {d.id: d for d in await session.scalars(select(Dpia))}
            assert rows["DPIA-CAM-2026-1"].project_id == "PRJ-CAM-2026-1"
            assert {d.kind for d in rows.values()} == {"dpia"}
            assert rows["DPIA-CAM-2026-2"].status == "draft"  # nothing of the DPIA changed
            named = await session.execute(
                select(ProjectParty.name, ProjectParty.role, ProjectParty.organisation_id).where(
                    ProjectParty.project_id == "PRJ-CAM-2026-2"
                )
            )
            assert sorted(named.all(), key=str) == sorted(
                [("Camden", "controller", 1), ("Acme Analytics", "processor", None)], key=str
            )
        await asyncio.to_thread(migrate, database_url, "0014")  # and back down cleanly
    finally:
        await engine.dispose()


async def test_a_new_dpia_starts_a_project_of_its_own_at_step_four(world: World) -> None:
    dpia_id = await world.dpias.create(world.ann, "Adult social care sharing", world.cam)
    project_id = await world.projects.project_of(dpia_id)
    assert project_id == "PRJ-" + dpia_id.removeprefix("DPIA-")
    view = await world.projects.view(world.ann, project_id)
    assert view.step is IgStep.CO_CREATE_DPIA
    assert [(d.id, d.kind) for d in view.documents] == [(dpia_id, DocumentKind.DPIA)]
    assert [(p.name, p.organisation_id) for p in view.parties] == [
        ("London Borough of Camden", world.cam)
    ]


async def test_a_project_starts_at_step_one_with_its_idea_and_only_its_people_see_it(
    world: World,
) -> None:
    project_id = await world.projects.create(world.ann, "Warm homes data", world.cam)
    assert project_id.startswith(f"PRJ-CAM-{datetime.now(UTC).year}-")
    view = await world.projects.view(world.ann, project_id)
    assert view.step is IgStep.GENERATE_IDEAS and view.can_manage
    (idea,) = view.documents
    assert idea.kind is DocumentKind.IDEA and idea.id == f"{project_id}-IDEA"
    assert idea.role is Role.OWNER
    with pytest.raises(DocumentNotFound):
        await world.projects.view(world.bob, project_id)
    assert [p.id for p in await world.projects.list_for(world.ann)] == [project_id]
    assert await world.projects.list_for(world.bob) == []


async def test_a_step_document_takes_the_projects_parties_and_people(world: World) -> None:
    project_id = await world.projects.create(world.ann, "Warm homes data", world.cam)
    idea_id = f"{project_id}-IDEA"
    await world.dpias.invite(world.ann, idea_id, "bob@nlft.example", "editor", "Bob Jones")
    async with async_sessionmaker(world.engine)() as session, session.begin():
        session.add(
            ProjectParty(
                project_id=project_id,
                organisation_id=world.nhs,
                name="NLFT",
                role="joint_controller",
            )
        )
    dpia_id = await world.projects.start_step(world.ann, project_id, DocumentKind.DPIA)
    assert dpia_id.startswith("DPIA-CAM-")  # a project's DPIA keeps the references people quote
    view = await world.projects.view(world.bob, project_id)
    assert view.step is IgStep.CO_CREATE_DPIA
    assert not view.can_manage
    assert {d.kind: d.role for d in view.documents} == {
        DocumentKind.IDEA: Role.EDITOR,
        DocumentKind.DPIA: Role.EDITOR,
    }
    async with async_sessionmaker(world.engine)() as session:
        names = await session.scalars(select(DpiaParty.name).where(DpiaParty.dpia_id == dpia_id))
        assert sorted(names) == ["London Borough of Camden", "NLFT"]
    with pytest.raises(Conflict):
        await world.projects.start_step(world.ann, project_id, DocumentKind.DPIA)
    with pytest.raises(AccessDenied):
        await world.projects.start_step(world.bob, project_id, DocumentKind.DPIA)
