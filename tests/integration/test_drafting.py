"""Drafting in a project, on SQLite and PostgreSQL: the DPIA starts from steps 1-3, the ISA
from the DPIA with a source link per drafted field; a later DPIA change shows on the ISA as
"source changed" with the difference, makes its sign-offs stale, and confirming the link
clears the notice."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from server.domain.changes import ChangeEvent
from server.domain.errors import AccessDenied
from server.domain.projects import DocumentKind
from server.domain.workflow import SignOffState
from server.services.projects import ProjectService
from server.services.sources import SourceService
from server.storage.models import SourceLink
from server.usecases.projects import Projects
from tests.support.review import World, edit, review_world, text, value

pytestmark = pytest.mark.asyncio


class NoRooms:
    """No document is loaded in a room here: everything is committed already."""

    def __init__(self) -> None:
        self.rooms: dict[str, Any] = {}


@dataclasses.dataclass
class Drafting:
    world: World
    projects: Projects
    sources: SourceService
    project_id: str


@pytest_asyncio.fixture
async def drafting(database_url: str) -> AsyncIterator[Drafting]:
    async with review_world(database_url) as world:
        service = ProjectService(world.sessions, world.dpias)
        sources = SourceService(world.sessions, world.dpias, world.history, world.audit)
        projects = Projects(service, world.history, sources, NoRooms())  # type: ignore[arg-type]
        project_id = await service.project_of(world.dpia_id)
        assert project_id is not None
        yield Drafting(world, projects, sources, project_id)


async def on(w: World, document_id: str, *changes: Any) -> None:
    for change in changes:
        await edit(dataclasses.replace(w, dpia_id=document_id), change)


def plain(content: dict[str, Any], section: str, field: str) -> list[str]:
    return ["".join(run["text"] for run in node["content"]) for node in content[section][field]]


async def dpia_changed(d: Drafting) -> None:
    """What the change-event recorder does after the quiet period (server.bootstrap)."""
    now = datetime.now(UTC)
    event = ChangeEvent(d.world.dpia_id, "user:1", "browser", "need.aims", None, now, now, 1)
    await d.world.signoffs.mark_stale([event])
    await d.sources.on_changes([event])


async def test_the_isa_is_drafted_from_the_dpia_with_a_link_per_drafted_field(
    drafting: Drafting,
) -> None:
    w = drafting.world
    await on(
        w,
        w.dpia_id,
        text("need.aims", "Fewer people sleeping rough"),
        text("necessity.rights", "Camden answers every request"),
        value("review.next_review", "2027-03-31"),
    )
    isa_id = await drafting.projects.start_step(w.owner, drafting.project_id, DocumentKind.ISA)
    content = (await w.history.current(isa_id)).content
    assert plain(content, "purpose", "purpose") == ["Fewer people sleeping rough"]
    assert plain(content, "rights", "rights") == ["Camden answers every request"]
    assert content["review"]["review_date"] == "2027-03-31"
    assert [r["organisation"] for r in content["parties"]["parties"]] == [
        "London Borough of Camden"
    ]
    async with w.sessions() as session:
        links = {
            link.field: link
            for link in await session.scalars(
                select(SourceLink).where(SourceLink.document_id == isa_id)
            )
        }
    assert set(links) == {"purpose.purpose", "rights.rights", "review.review_date"}
    assert json.loads(links["rights.rights"].source_fields) == ["necessity.rights"]
    assert links["rights.rights"].source_document_id == w.dpia_id
    assert "Camden answers every request" in links["rights.rights"].source_text
    sources = await drafting.projects.links.sources(w.owner, isa_id)
    assert sources.changed == []


async def test_a_dpia_change_shows_on_the_isa_stales_its_sign_off_and_confirm_clears_it(
    drafting: Drafting,
) -> None:
    w = drafting.world
    await on(w, w.dpia_id, text("necessity.rights", "Camden answers every request"))
    isa_id = await drafting.projects.start_step(w.owner, drafting.project_id, DocumentKind.ISA)
    signoff = await w.signoffs.sign(w.dpo, isa_id, kind="party_approval", decision="approve")
    assert {s.id: s.state for s in await w.signoffs.of_dpia(isa_id)} == {
        signoff: SignOffState.VALID
    }

    await on(w, w.dpia_id, text("necessity.rights", "Each borough answers its own residents"))
    await dpia_changed(drafting)

    sources = await drafting.projects.links.sources(w.owner, isa_id)
    (changed,) = sources.changed
    assert changed.field == "rights.rights"
    assert "+Each borough answers its own residents" in changed.diff
    assert changed.changed_by == ["Olive Owner"]
    assert "Olive Owner" in sources.should_look and "Dee Pio" in sources.should_look
    (stale,) = await w.signoffs.of_dpia(isa_id)
    assert stale.state is SignOffState.STALE and stale.stale_at is not None
    assert await drafting.sources.changed_count(isa_id) == 1

    await drafting.sources.confirm(w.editor, isa_id, "rights.rights")
    assert await drafting.sources.changed_count(isa_id) == 0
    assert (await drafting.projects.links.sources(w.owner, isa_id)).changed == []
    (still,) = await w.signoffs.of_dpia(isa_id)
    assert still.state is SignOffState.STALE  # its signer re-confirms, as for any edit


async def test_a_sign_off_made_after_the_change_is_not_made_stale_by_it(
    drafting: Drafting,
) -> None:
    w = drafting.world
    await on(w, w.dpia_id, text("necessity.rights", "Camden answers"))
    isa_id = await drafting.projects.start_step(w.owner, drafting.project_id, DocumentKind.ISA)
    await on(w, w.dpia_id, text("necessity.rights", "Both answer"))
    await dpia_changed(drafting)
    later = await w.signoffs.sign(w.dpo, isa_id, kind="party_approval", decision="approve")
    await dpia_changed(drafting)
    assert {s.id: s.state for s in await w.signoffs.of_dpia(isa_id)} == {later: SignOffState.VALID}


async def test_only_owners_and_editors_confirm_a_changed_source(drafting: Drafting) -> None:
    w = drafting.world
    await on(w, w.dpia_id, text("necessity.rights", "Camden answers"))
    isa_id = await drafting.projects.start_step(w.owner, drafting.project_id, DocumentKind.ISA)
    with pytest.raises(AccessDenied):
        await drafting.sources.confirm(w.dpo, isa_id, "rights.rights")


async def test_the_dpia_step_starts_from_the_idea_and_the_pre_screening(
    drafting: Drafting,
) -> None:
    w = drafting.world
    service = drafting.projects.projects
    project_id = await service.create(w.owner, "Warm homes", w.owner.organisation_ids[0])
    view = await service.view(w.owner, project_id)
    idea = view.current(DocumentKind.IDEA)
    assert idea is not None
    await on(w, idea.id, text("outcome.outcome", "No cold homes this winter"))
    screen_id = await drafting.projects.start_step(w.owner, project_id, DocumentKind.PRESCREENING)
    await on(w, screen_id, value("screening.triggers", ["matching-combining", "large-scale"]))
    dpia_id = await drafting.projects.start_step(w.owner, project_id, DocumentKind.DPIA)
    content = (await w.history.current(dpia_id)).content
    assert plain(content, "need", "aims") == ["No cold homes this winter"]
    assert content["screening"]["triggers"] == ["matching-combining", "large-scale"]
    assert content["need"]["why_needed"] == []  # nothing to draft it from: left empty
