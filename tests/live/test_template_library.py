"""The template library over real HTTP, on SQLite and PostgreSQL: Camden's administrator
makes a template from the UK one, a malformed draft is refused with the field named, she
publishes it; the trust's administrator adopts it and makes a DPIA from it; Camden
publishes version 2 (a field removed, a section renamed, one added), and the DPIA's owner
sees what changes, confirms, and the DPIA follows version 2: its answer to the removed
field kept, the new field writable in an open editor, the move in its history."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pycrdt import Map
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.administration import AdminChannel, Standing
from server.services.accounts import password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.passwords import PasswordResets
from server.storage.database import create_engine
from server.storage.models import DocumentUpdate, Dpia
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, csrf_field, prepare, session_socket, signed_in

pytestmark = pytest.mark.asyncio
ROOT = Actor("user:0", AdminChannel.CLI, Standing(True, frozenset()), "set-up")
LIBRARY = "/admin/organisations/{code}/templates"


@dataclass
class World:
    live: LiveServer
    base: str
    database_url: str
    orgs: dict[str, int]

    async def client(self, email: str) -> httpx.AsyncClient:
        return await signed_in(self.base, email)

    async def dpia(self, dpia_id: str) -> Dpia:
        engine = create_engine(self.database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                return await session.get_one(Dpia, dpia_id)
        finally:
            await engine.dispose()

    async def origins(self, dpia_id: str) -> list[str]:
        engine = create_engine(self.database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                query = select(DocumentUpdate.origin).where(DocumentUpdate.document_id == dpia_id)
                return [o or "" for o in await session.scalars(query)]
        finally:
            await engine.dispose()


async def _seed(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    passwords = PasswordResets(sessions, base_url="http://x.test", mail_from="a@b.example")
    hasher = password_hasher("fast-for-tests")
    admin = Administration(sessions, passwords, AdminAuditTrail(sessions), hasher=hasher)
    cam = (await admin.create_organisation(ROOT, "CAM", "London Borough of Camden")).id
    nlft = (await admin.create_organisation(ROOT, "NLFT", "North London Trust")).id
    isl = (await admin.create_organisation(ROOT, "ISL", "Islington")).id
    for email, org, role in (
        ("ada@camden.example", cam, "admin"),
        ("max@camden.example", cam, "member"),
        ("nia@nlft.example", nlft, "admin"),
        ("ivy@islington.example", isl, "admin"),
    ):
        await admin.invite(ROOT, org, email, email.split("@")[0].title(), role, password=PASSWORD)
    await engine.dispose()
    return {"CAM": cam, "NLFT": nlft, "ISL": isl}


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    prepare(database_url)
    orgs = asyncio.run(_seed(database_url))
    with serving(make_settings(database_url)) as live:
        yield World(live, f"http://127.0.0.1:{live.port}", database_url, orgs)


def _textarea(page: str) -> dict[str, object]:
    found = re.search(r'<textarea id="template-content"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page
    content: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return content


async def _post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


async def test_a_template_made_published_adopted_used_and_a_dpia_moved(world: World) -> None:
    ada = await world.client("ada@camden.example")
    nia = await world.client("nia@nlft.example")
    max_ = await world.client("max@camden.example")
    try:
        # Only administrators reach the library: a member gets 404, as for any admin page.
        assert (await max_.get(LIBRARY.format(code="CAM"))).status_code == 404
        assert (await nia.get(LIBRARY.format(code="CAM"))).status_code == 404

        made = await _post(
            ada, LIBRARY.format(code="CAM"), title="Camden CCTV DPIA", source="uk-dpia"
        )
        assert made.status_code == 303, made.text
        path = made.headers["location"]
        assert path == LIBRARY.format(code="CAM") + "/cam-camden-cctv-dpia"
        draft = _textarea((await ada.get(path)).text)
        assert draft["id"] == "cam-camden-cctv-dpia" and draft["version"] == 1
        sections = draft["sections"]
        assert isinstance(sections, list)
        sections[0]["guidance"] = "Camden: CCTV always needs a DPIA."

        # A malformed draft is refused with the field named, never a 500, and not kept.
        broken = json.loads(json.dumps(draft))
        broken["sections"][0]["fields"][0]["kind"] = "slider"
        refused = await _post(ada, path, action="save", content=json.dumps(broken))
        assert refused.status_code == 400, refused.text
        assert "field screening.triggers: kind &#39;slider&#39; is not one of" in refused.text
        not_json = await _post(ada, path, action="save", content='{"sections": [}')
        assert not_json.status_code == 400 and "not valid JSON" in not_json.text
        assert _textarea((await ada.get(path)).text)["sections"][0]["fields"][0]["kind"] == (
            "multichoice"
        )

        saved = await _post(ada, path, action="save", content=json.dumps(draft))
        assert saved.status_code == 303, saved.text
        published = await _post(ada, path, action="publish")
        assert published.headers["location"].endswith("?published=1")
        assert "Draft version 2" in (await ada.get(path)).text  # published: read-only now

        # Another organisation sees it published, cannot use it before adopting it.
        library = await nia.get(LIBRARY.format(code="NLFT"))
        assert "Camden CCTV DPIA" in library.text and "London Borough of Camden" in library.text
        new = await nia.get("/dpias/new")
        assert "cam-camden-cctv-dpia" not in new.text
        early = await nia.post(
            "/dpias/new",
            data={
                "csrftoken": csrf_field(new.text),
                "title": "Ward cameras",
                "lead": str(world.orgs["NLFT"]),
                "template": "cam-camden-cctv-dpia",
            },
        )
        assert early.status_code == 400 and "Choose a template your organisation may use" in (
            early.text
        )
        adopted = await _post(
            nia, LIBRARY.format(code="NLFT"), action="adopt", template="cam-camden-cctv-dpia"
        )
        assert adopted.status_code == 303, adopted.text
        new = await nia.get("/dpias/new")
        assert "Camden CCTV DPIA, version 1 (adopted, from London Borough of Camden)" in new.text
        created = await nia.post(
            "/dpias/new",
            data={
                "csrftoken": csrf_field(new.text),
                "title": "Ward cameras",
                "lead": str(world.orgs["NLFT"]),
                "template": "cam-camden-cctv-dpia",
            },
        )
        assert created.status_code == 303, created.text
        dpia_id = created.headers["location"].rsplit("/", 1)[1]
        record = await world.dpia(dpia_id)
        assert (record.template_id, record.template_version) == ("cam-camden-cctv-dpia", 1)
        editor = (await nia.get(f"/dpias/{dpia_id}")).text
        assert "Made from the template “Camden CCTV DPIA”, version 1." in editor
        assert "Camden: CCTV always needs a DPIA." in html.unescape(editor)  # its own guidance

        # The trust answers a field that version 2 will not have, in an open editor.
        socket = await session_socket(world.live.port, dpia_id, nia)
        try:
            socket.doc.get("values", type=Map)["outcome.ico_reference"] = "ICO-123"
            await socket.wait_saved()

            # Camden publishes version 2: a field removed, a section renamed, one added.
            opened = await _post(ada, path, action="edit")
            assert opened.status_code == 303
            second = _textarea((await ada.get(path)).text)
            assert second["version"] == 2
            for section in second["sections"]:
                if section["id"] == "outcome":
                    section["fields"] = [f for f in section["fields"] if f["id"] != "ico_reference"]
                if section["id"] == "need":
                    section["title"] = "Why cameras are needed"
            second["sections"].insert(
                1,
                {
                    "id": "cameras",
                    "title": "The cameras",
                    "fields": [{"id": "locations", "label": "Where they are", "kind": "text"}],
                },
            )
            assert (
                await _post(ada, path, action="save", content=json.dumps(second))
            ).status_code == 303
            assert (await _post(ada, path, action="publish")).status_code == 303

            editor = (await nia.get(f"/dpias/{dpia_id}")).text
            assert "Version 2 is published: see what it changes" in editor
            preview = await nia.get(f"/dpias/{dpia_id}/template")
            text = html.unescape(preview.text)
            assert "What moving to version 2 changes" in text
            assert re.search(r"Sections added</h3><ul><li>The cameras<", text), text
            assert "becomes “Why cameras are needed”" in text
            assert re.search(r"Fields removed</h3><ul><li>[^<]*ICO case reference", text), text
            assert re.search(r'id="kept-answers"><li>[^<]*ICO case reference', text), text
            # Looking changed nothing.
            assert (await world.dpia(dpia_id)).template_version == 1

            unconfirmed = await nia.post(
                f"/dpias/{dpia_id}/template",
                data={"csrftoken": csrf_field(preview.text), "version": "2"},
            )
            assert unconfirmed.status_code == 400
            assert (await world.dpia(dpia_id)).template_version == 1
            moved = await nia.post(
                f"/dpias/{dpia_id}/template",
                data={"csrftoken": csrf_field(preview.text), "version": "2", "confirm": "yes"},
            )
            assert moved.status_code == 303, moved.text
            assert (await world.dpia(dpia_id)).template_version == 2
            await socket.wait_until(
                lambda: socket.doc.get("meta", type=Map).get("template_version") == 2
            )
            # The open editor may now write the new field (its room follows version 2), and
            # the answer to the removed field is still there.
            socket.doc.get("values", type=Map)["cameras.locations"] = "Ward 4 entrance"
            await socket.wait_saved()
            assert socket.close_code is None
            assert socket.doc.get("values", type=Map)["outcome.ico_reference"] == "ICO-123"
        finally:
            await socket.close()

        after = (await nia.get(f"/dpias/{dpia_id}")).text
        assert "version 2." in after and "see what it changes" not in after
        history = html.unescape((await nia.get(f"/dpias/{dpia_id}/history")).text)
        assert "Moved from version 1 to version 2 of the template “Camden CCTV DPIA”" in history
        assert "answers kept without a field: Outcome: ICO case reference" in history
        assert "template:cam-camden-cctv-dpia@2" in await world.origins(dpia_id)
    finally:
        for client in (ada, nia, max_):
            await client.aclose()


def _audit_rows(page: str) -> list[tuple[str, str, str, str]]:
    """The audit page's rows as (what, by, before, after), oldest first (the page shows
    the newest first)."""
    rows = re.findall(
        r'<td data-label="What">([^<]*)</td>\s*<td data-label="By">([^<]*)</td>\s*'
        r'<td data-label="Channel">[^<]*</td>\s*<td data-label="Before">(.*?)</td>\s*'
        r'<td data-label="After">(.*?)</td>',
        html.unescape(page),
        re.S,
    )
    return [(what, by, before, after) for what, by, before, after in reversed(rows)]


async def test_template_library_actions_are_in_the_administration_audit_chain(
    world: World,
) -> None:
    """Making, drafting, saving, publishing and adopting a template, and moving a DPIA to
    its new version, each show on the organisation's audit page with who did it; the chain
    still verifies."""
    ada = await world.client("ada@camden.example")
    nia = await world.client("nia@nlft.example")
    try:
        made = await _post(ada, LIBRARY.format(code="CAM"), title="Parks CCTV", source="uk-dpia")
        path = made.headers["location"]
        draft = _textarea((await ada.get(path)).text)
        assert (await _post(ada, path, action="save", content=json.dumps(draft))).status_code == 303
        assert (await _post(ada, path, action="publish")).status_code == 303
        template_id = path.rsplit("/", 1)[1]
        adopted = await _post(
            nia, LIBRARY.format(code="NLFT"), action="adopt", template=template_id
        )
        assert adopted.status_code == 303
        new = await nia.get("/dpias/new")
        created = await nia.post(
            "/dpias/new",
            data={
                "csrftoken": csrf_field(new.text),
                "title": "Park cameras",
                "lead": str(world.orgs["NLFT"]),
                "template": template_id,
            },
        )
        dpia_id = created.headers["location"].rsplit("/", 1)[1]
        assert (await _post(ada, path, action="edit")).status_code == 303
        assert (await _post(ada, path, action="publish")).status_code == 303
        preview = await nia.get(f"/dpias/{dpia_id}/template")
        moved = await nia.post(
            f"/dpias/{dpia_id}/template",
            data={"csrftoken": csrf_field(preview.text), "version": "2", "confirm": "yes"},
        )
        assert moved.status_code == 303, moved.text

        camden = _audit_rows((await ada.get("/admin/organisations/CAM/audit")).text)
        library = [row for row in camden if row[0].startswith("Template")]
        assert [(what, by) for what, by, _, _ in library] == [
            ("Template made", "Ada"),
            ("Template: draft saved", "Ada"),
            ("Template published", "Ada"),
            ("Template: new draft opened", "Ada"),
            ("Template published", "Ada"),
        ]
        assert "Template: cam-parks-cctv" in library[0][3]
        assert "Made from: UK DPIA" in library[0][3]
        assert "Version: 2" in library[-1][3]

        trust = _audit_rows((await nia.get("/admin/organisations/NLFT/audit")).text)
        [adoption] = [row for row in trust if row[0] == "Template adopted"]
        assert adoption[1] == "Nia" and "Published by: London Borough of Camden" in adoption[3]
        [move] = [row for row in trust if row[0] == "DPIA moved to a new template version"]
        assert move[1] == "Nia"
        assert f"DPIA: {dpia_id}" in move[2] and "Version: 1" in move[2]
        assert "Version: 2" in move[3]
        # The DPIA's own history still tells the move.
        history = html.unescape((await nia.get(f"/dpias/{dpia_id}/history")).text)
        assert "Moved from version 1 to version 2 of the template “Parks CCTV”" in history
    finally:
        await ada.aclose()
        await nia.aclose()
    engine = create_engine(world.database_url)
    try:
        chain = AdminAuditTrail(async_sessionmaker(engine, expire_on_commit=False))
        assert await chain.verify() is None
    finally:
        await engine.dispose()
