"""The project pages over real HTTP: a new project, who may see it, starting a step, adding
someone or an organisation to the whole project, and the dashboard (issue 16)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pycrdt import Map
from sqlalchemy import select, update

from server.storage.database import create_engine
from server.storage.models import AuditEvent, Dpia, Participant, SectionReviewer, SectionState
from tests.support.live import LiveServer
from tests.support.site import Site, csrf_field, seeded_server, session_socket

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


async def new_project(client: httpx.AsyncClient, title: str) -> str:
    form = (await client.get("/projects/new")).text
    lead = re.search(r'<option value="(\d+)"', form)
    assert lead, form
    response = await client.post(
        "/projects/new",
        data={"csrftoken": csrf_field(form), "title": title, "lead": lead.group(1)},
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/projects/PRJ-CAM-")
    return location.removeprefix("/projects/")


async def post(client: httpx.AsyncClient, path: str, page: str, **data: str) -> httpx.Response:
    return await client.post(path, data={"csrftoken": csrf_field(page), **data})


async def start(client: httpx.AsyncClient, project_id: str, kind: str) -> httpx.Response:
    page = (await client.get(f"/projects/{project_id}")).text
    return await post(client, f"/projects/{project_id}/steps", page, kind=kind)


async def add(client: httpx.AsyncClient, project_id: str, **data: str) -> httpx.Response:
    page = (await client.get(f"/projects/{project_id}")).text
    return await post(client, f"/projects/{project_id}/people", page, **data)


def current_step(page: str) -> str:
    found = re.search(r'aria-current="step">\s*<div class="task-head">\s*<h3[^>]*>(.*?)</h3>', page)
    assert found, page
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


async def test_signing_in_leads_to_projects_and_a_new_project_opens_at_its_idea(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner = clients["owner"]
    assert (await owner.get("/")).headers["location"] == "/projects"
    project_id = await new_project(owner, "Joining up early help")
    page = (await owner.get(f"/projects/{project_id}")).text
    assert "Joining up early help" in html.unescape(page)
    assert current_step(page) == "1. Generate ideas"
    assert f'href="/dpias/{project_id}-IDEA"' in page
    assert page.count('<li class="task') == 7
    assert f'href="/projects/{project_id}/sign-off"' in page
    # The idea opens in the editor with its own template, and the way back to its project.
    editor = html.unescape((await owner.get(f"/dpias/{project_id}-IDEA")).text)
    assert "Step 1 of 7: Generate ideas, in project" in editor
    assert '"id": "project-idea"' in editor or '"id":"project-idea"' in editor
    # Its reviewers are asked to review the idea's sections, not the DPIA's.
    people = (await owner.get(f"/dpias/{project_id}-IDEA/participants")).text
    assert 'value="outcome"' in people and 'value="risks"' not in people
    listed = (await owner.get("/projects")).text
    assert f'href="/projects/{project_id}"' in listed


async def test_a_project_is_not_found_for_someone_who_takes_no_part(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    project_id = await new_project(clients["owner"], "Only Camden knows")
    outsider = clients["outsider"]
    assert (await outsider.get(f"/projects/{project_id}")).status_code == 404
    assert project_id not in (await outsider.get("/projects")).text
    page = (await outsider.get("/projects")).text
    for path in (f"/projects/{project_id}/steps", f"/projects/{project_id}/people"):
        response = await post(outsider, path, page, kind="prescreening", action="add-person")
        assert response.status_code == 404, path


async def test_an_owner_starts_a_step_and_someone_else_cannot(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner, editor = clients["owner"], clients["editor"]
    project_id = await new_project(owner, "Cold homes")
    assert (
        await add(
            owner, project_id, action="add-person", email="editor@nlft.example", role="editor"
        )
    ).status_code == 303
    editor_view = (await editor.get(f"/projects/{project_id}")).text
    assert "Start this step" not in editor_view  # not an owner: nothing to start
    refused = await post(editor, f"/projects/{project_id}/steps", editor_view, kind="dpia")
    assert refused.status_code == 403

    started = await start(owner, project_id, "dpia")
    assert started.status_code == 303
    dpia_id = started.headers["location"].removeprefix("/dpias/")
    assert dpia_id.startswith("DPIA-CAM-")
    page = (await owner.get(f"/projects/{project_id}")).text
    assert current_step(page) == "4. Co-create DPIA"
    assert f'href="/dpias/{dpia_id}"' in page
    again = await start(owner, project_id, "dpia")
    assert again.status_code == 409
    editor_page = html.unescape((await editor.get(f"/dpias/{dpia_id}")).text)
    assert "Step 4 of 7: Co-create DPIA, in project" in editor_page
    assert f'href="/projects/{project_id}"' in editor_page


async def test_the_ig_step_control_of_a_dpia_moves_its_project(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    _, site = server
    owner = clients["owner"]
    workflow = f"/dpias/{site.dpia_id}/workflow"
    page = (await owner.get(workflow)).text
    moved = await post(owner, workflow, page, action="ig_step", step="complete_isa")
    assert moved.status_code == 303
    project_id = "PRJ-" + site.dpia_id.removeprefix("DPIA-")
    assert current_step((await owner.get(f"/projects/{project_id}")).text) == "5. Complete ISA"
    listed = (await owner.get("/dpias?ig_step=complete_isa")).text
    assert f'href="/dpias/{site.dpia_id}"' in listed


async def test_someone_added_to_the_project_takes_part_in_every_document(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner = clients["owner"]
    project_id = await new_project(owner, "Shared care records")
    idea = f"{project_id}-IDEA"
    party = await add(
        owner,
        project_id,
        action="add-party",
        party_name="Borough of Example",
        party_role="joint_controller",
        organisation="",
    )
    assert party.status_code == 303, party.text
    assert "Borough of Example" in (await owner.get(f"/dpias/{idea}/participants")).text
    first = await add(
        owner, project_id, action="add-person", email="viewer@nlft.example", role="viewer"
    )
    assert first.status_code == 303, first.text
    # A step started later takes the project's parties and people.
    dpia_id = (await start(owner, project_id, "dpia")).headers["location"].split("/")[-1]
    dpia_people = (await owner.get(f"/dpias/{dpia_id}/participants")).text
    assert "Borough of Example" in dpia_people and "viewer@nlft.example" in dpia_people

    added = await add(
        owner,
        project_id,
        action="add-person",
        email="partner@borough.example",
        name="Pat Partner",
        role="commenter",
    )
    assert added.status_code == 303, added.text
    page = html.unescape((await owner.get(added.headers["location"])).text)
    assert "partner@borough.example now takes part in 2 documents of this project." in page
    assert "Pat Partner" in page and "email only" in page  # an email-only partner
    for document in (idea, dpia_id):
        people = (await owner.get(f"/dpias/{document}/participants")).text
        assert "partner@borough.example" in people, document
    twice = await add(
        owner, project_id, action="add-person", email="partner@borough.example", role="editor"
    )
    assert twice.status_code == 409
    assert "There is a problem" in twice.text

    viewer = clients["viewer"]  # takes part, but does not own: may not add anyone
    refused = await add(viewer, project_id, action="add-person", email="x@y.example", role="viewer")
    assert refused.status_code == 403
    assert (
        "Add someone to the whole project" not in (await viewer.get(f"/projects/{project_id}")).text
    )
    outsider = await add(
        clients["editor"], project_id, action="add-person", email="x@y.example", role="viewer"
    )
    assert outsider.status_code == 404  # the editor takes no part in this project


async def test_a_step_without_its_template_cannot_be_started(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner = clients["owner"]
    project_id = await new_project(owner, "Not yet")
    page = (await owner.get(f"/projects/{project_id}")).text
    for kind in ("nonsense", "prescreening"):
        response = await post(owner, f"/projects/{project_id}/steps", page, kind=kind)
        if kind == "prescreening" and 'name="kind" value="prescreening"' in page:
            assert response.status_code == 303  # its template has arrived
        else:
            assert response.status_code == 400, kind


async def test_the_dashboard_counts_projects_by_step_and_filters(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner = clients["owner"]
    idea = await new_project(owner, "Idea only")
    at_dpia = await new_project(owner, "Straight to the DPIA")
    await start(owner, at_dpia, "dpia")
    page = (await owner.get("/projects")).text
    counts = dict(re.findall(r'data-step="(\w+)">(\d+)<', page))
    # The seeded DPIA is a project at step 4 too.
    assert counts["generate_ideas"] == "1" and counts["co_create_dpia"] == "2"
    assert counts["implement"] == "0"
    filtered = (await owner.get("/projects?step=generate_ideas")).text
    assert f'href="/projects/{idea}"' in filtered
    assert f'href="/projects/{at_dpia}"' not in filtered


async def test_waiting_for_me_and_overdue_on_the_dashboard(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site], sqlite_url: str
) -> None:
    live, site = server
    dpia_id = site.dpia_id
    assert "Nothing waits for you." in (await clients["dpo"].get("/projects")).text
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Dpia).where(Dpia.id == dpia_id).values(status="dpo_review")
            )
            editor = await connection.scalar(
                select(Participant.id).where(
                    Participant.dpia_id == dpia_id, Participant.email == "editor@nlft.example"
                )
            )
            await connection.execute(
                SectionReviewer.__table__.insert().values(participant_id=editor, section="need")
            )
            await connection.execute(
                SectionState.__table__.insert().values(
                    dpia_id=dpia_id,
                    section="need",
                    state="submitted",
                    content_hash="",
                    seq=1,
                    reasons="",
                    changed_by="user:1",
                    changed_at=datetime.now(UTC),
                )
            )
    finally:
        await engine.dispose()
    dpo_page = html.unescape((await clients["dpo"].get("/projects")).text)
    assert f"{dpia_id}: Shared DPIA</a>: your advice as DPO" in dpo_page
    editor_page = html.unescape((await clients["editor"].get("/projects")).text)
    assert "review the section “Need for a DPIA”" in editor_page or (
        "review the section “" in editor_page and dpia_id in editor_page
    )
    assert "your advice as DPO" not in editor_page

    # A review date in the past, written as the editor writes it.
    writer = await session_socket(live.port, dpia_id, clients["owner"])
    try:
        writer.doc.get("values", type=Map)["review.next_review"] = "2020-02-01"
        await writer.wait_saved()
    finally:
        await writer.close()
    # Not due while the DPIA is still being written (issue 17): a review date is the
    # approved record's, and the dashboard says so once it is in force.
    not_yet = html.unescape((await clients["owner"].get("/projects")).text)
    assert "Review was due on 01 February 2020" not in not_yet
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Dpia).where(Dpia.id == dpia_id).values(status="in_force")
            )
    finally:
        await engine.dispose()
    overdue = html.unescape((await clients["owner"].get("/projects")).text)
    assert "Review was due on 01 February 2020" in overdue

    # Sent for approval three weeks ago and still waiting.
    engine = create_engine(sqlite_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(Dpia).where(Dpia.id == dpia_id).values(status="awaiting_approval")
            )
            await connection.execute(
                update(AuditEvent)
                .where(AuditEvent.dpia_id == dpia_id)
                .values(at=datetime.now(UTC) - timedelta(days=21))
            )
            await connection.execute(
                AuditEvent.__table__.insert().values(
                    dpia_id=dpia_id,
                    position=10_000,
                    kind="status",
                    actor="user:1",
                    channel="browser",
                    section=None,
                    seq=1,
                    at=datetime.now(UTC) - timedelta(days=21),
                    data="{}",
                    prev_hash="",
                    hash="",
                )
            )
    finally:
        await engine.dispose()
    waiting = html.unescape((await clients["owner"].get("/projects")).text)
    assert "Sent for approval 21 days ago" in waiting
