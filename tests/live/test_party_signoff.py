"""Sign-off by every party, a reviewing body's endorsement, reminders and adoption, over real
HTTP (the app under uvicorn) and the collaboration WebSocket: an administrator records who
signs as what; each party signs only for itself, in a role it holds; a change makes the
signatures stale; the reviewing body endorses or withholds with reasons; another borough
adopts the endorsed agreement and sees what it changed from the endorsed text."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from pycrdt import XmlFragment
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.templates import append_paragraphs
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine, migrate
from server.storage.models import Membership, Organisation, OutboxMessage
from server.storage.updates import SqlUpdateStore
from tests.support.live import WAIT_SECONDS, make_settings, serving
from tests.support.parties import joint_project
from tests.support.site import PASSWORD, csrf_field, session_socket, signed_in

pytestmark = pytest.mark.asyncio
FAST = password_hasher("fast-for-tests")
PEOPLE = {  # key: (organisation, name)
    "ada": ("CAM", "Ada Admin"),
    "ann": ("CAM", "Ann Camden"),
    "ian": ("ISL", "Ian Islington"),
    "bo": ("CAM", "Bo Both"),
    "rita": ("IGFL", "Rita Reviewer"),
    "hal": ("HAC", "Hal Hackney"),
}


@dataclass
class World:
    database_url: str
    project_id: str
    dpia_id: str
    isa_id: str
    ids: dict[str, int] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def page(self) -> str:
        return f"/projects/{self.project_id}/sign-off"


async def seed(database_url: str) -> World:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, FAST)
    orgs = {
        code: await accounts.create_organisation(code, name)
        for code, name in (
            ("CAM", "Camden"),
            ("ISL", "Islington"),
            ("IGFL", "IGfL"),
            ("HAC", "Hackney"),
        )
    }
    ids = {}
    for key, (code, name) in PEOPLE.items():
        ids[key] = await accounts.create_user(f"{key}@example.org", name, PASSWORD, code)
    async with sessions.begin() as session:
        await session.execute(
            update(Membership).where(Membership.user_id == ids["ada"]).values(role="admin")
        )
        await session.execute(
            update(Organisation).where(Organisation.code == "IGFL").values(reviewing_body=True)
        )
        # Bo is a member of Camden and of Islington, DPO of each; Ian is Islington's DPO.
        session.add(
            Membership(
                user_id=ids["bo"], organisation_id=orgs["ISL"], role="member", signatory_roles="dpo"
            )
        )
        await session.execute(
            update(Membership)
            .where(Membership.user_id.in_([ids["bo"], ids["ian"]]))
            .values(signatory_roles="dpo")
        )
    ann = CurrentUser(ids["ann"], "ann@example.org", "Ann Camden", (orgs["CAM"],))
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    project_id, dpia_id, isa_id = await joint_project(
        sessions,
        dpias,
        ann,
        (orgs["ISL"], "Islington"),
        [f"{k}@example.org" for k in ("ian", "bo", "hal")],
    )
    await engine.dispose()
    return World(database_url, project_id, dpia_id, isa_id, ids, orgs)


@pytest.fixture
def world(sqlite_url: str) -> Iterator[World]:
    migrate(sqlite_url)
    built = asyncio.run(seed(sqlite_url))
    with serving(make_settings(sqlite_url, change_quiet_seconds=0.2)) as live:
        built.port = live.port
        yield built


@pytest_asyncio.fixture
async def people(world: World) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {key: await signed_in(world.base, f"{key}@example.org") for key in PEOPLE}
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()


async def submit(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


def row(html: str, party: str, capacity: str = "dpo") -> str:
    """The state cell of a party's required signature in the first table on the page."""
    found = re.search(
        rf'class="party-signature party-signature-(\w+)" data-party="{party}" '
        rf'data-capacity="{capacity}"',
        html,
    )
    assert found, f"no row for {party} as {capacity}"
    return found.group(1)


async def sign(
    w: World, client: httpx.AsyncClient, document: str, signing_as: str
) -> httpx.Response:
    return await submit(
        client, w.page, action="sign", document=document, signing_as=signing_as, decision="approve"
    )


async def edit(w: World, client: httpx.AsyncClient, document: str, words: str) -> None:
    socket = await session_socket(w.port, document, client)
    try:
        append_paragraphs(socket.doc.get("field:need.aims", type=XmlFragment), [words])
        await socket.wait_saved()
    finally:
        await socket.close()


async def grant(
    w: World, people: dict[str, httpx.AsyncClient], key: str, role: str
) -> httpx.Response:
    """Camden's administrator records a signatory role through the person's admin page."""
    recorded = await submit(
        people["ada"],
        f"/admin/organisations/CAM/people/{w.ids[key]}",
        action="signatory",
        signatory_roles=role,
    )
    assert recorded.status_code == 303, recorded.text
    return recorded


async def until(client: httpx.AsyncClient, path: str, text: str) -> str:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            page = (await client.get(path)).text
            if text in page:
                return page
            await asyncio.sleep(0.05)


async def test_an_administrator_records_the_role_and_a_party_signs_only_for_itself_in_it(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    before = (await people["ann"].get(w.page)).text
    assert "Sign " + w.dpia_id not in before  # no role yet: no form
    recorded = await grant(w, people, "ann", "dpo")
    person = (await people["ada"].get(recorded.headers["location"])).text
    assert "Signatory roles saved." in person and "Data protection officer" in person
    audit = (await people["ada"].get("/admin/organisations/CAM/audit")).text
    assert "Signatory roles changed" in audit

    for signing_as, status, message in (
        (f"{w.orgs['ISL']}:dpo", 403, "You are not a member of Islington"),
        (f"{w.orgs['CAM']}:siro", 403, "You do not hold the role Senior information risk owner"),
    ):
        refused = await sign(w, people["ann"], w.dpia_id, signing_as)
        assert refused.status_code == status, refused.text
        assert message in refused.text and 'class="error-summary"' in refused.text
    signed = await sign(w, people["ann"], w.dpia_id, f"{w.orgs['CAM']}:dpo")
    assert signed.status_code == 303, signed.text
    page = (await people["ian"].get(w.page)).text
    assert row(page, "Camden") == "signed" and row(page, "Islington") == "outstanding"
    assert "not yet approved" in page and "Ann Camden" in page
    dpia_page = (await people["ann"].get(f"/dpias/{w.dpia_id}/workflow")).text
    assert "Sign-off by every party" in dpia_page and row(dpia_page, "Camden") == "signed"


async def test_a_person_in_two_parties_signs_for_the_one_they_choose_and_only_it(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    page = (await people["bo"].get(w.page)).text
    assert "Camden as Data protection officer" in page
    assert "Islington as Data protection officer" in page
    unchosen = await submit(
        people["bo"], w.page, action="sign", document=w.dpia_id, decision="approve"
    )
    assert unchosen.status_code == 400 and "choose which" in unchosen.text
    signed = await sign(w, people["bo"], w.dpia_id, f"{w.orgs['ISL']}:dpo")
    assert signed.status_code == 303, signed.text
    page = (await people["bo"].get(w.page)).text
    assert row(page, "Islington") == "signed" and row(page, "Camden") == "outstanding"


async def test_approved_only_when_every_party_signed_and_stale_after_a_change(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    await grant(w, people, "ann", "dpo")
    for document in (w.dpia_id, w.isa_id):
        assert (await sign(w, people["ann"], document, f"{w.orgs['CAM']}:dpo")).status_code == 303
        page = (await people["ann"].get(w.page)).text
        assert 'id="project-approved">not yet approved' in page
        assert (await sign(w, people["ian"], document, f"{w.orgs['ISL']}:dpo")).status_code == 303
    page = (await people["ann"].get(w.page)).text
    assert 'id="project-approved">approved by every party' in page

    await edit(w, people["ann"], w.dpia_id, "and share addresses with the police")
    page = await until(people["ann"], w.page, 'id="project-approved">not yet approved')
    assert row(page, "Camden") == "stale" and row(page, "Islington") == "stale"
    assert "Stale: changed since signed" in page


async def test_the_reviewing_body_withholds_with_reasons_then_endorses_and_it_goes_stale(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    assert (await people["rita"].get(w.page)).status_code == 404
    invited = await submit(
        people["ann"], w.page, action="invite_body", organisation=str(w.orgs["IGFL"])
    )
    assert invited.status_code == 303, invited.text
    page = (await people["rita"].get(w.page)).text
    assert "Endorsement by IGfL" in page
    comments = await people["rita"].get(f"/dpias/{w.isa_id}")
    assert comments.status_code == 200  # she takes part (as a commenter)
    bare = await submit(
        people["rita"], w.page, action="endorse", document=w.isa_id, decision="withhold"
    )
    assert bare.status_code == 400 and "withholding an endorsement needs reasons" in bare.text
    assert f'href="#endorse-reasons-{w.isa_id}"' in bare.text
    withheld = await submit(
        people["rita"],
        w.page,
        action="endorse",
        document=w.isa_id,
        decision="withhold",
        reasons="Retention is unclear",
    )
    assert withheld.status_code == 303
    page = (await people["ann"].get(w.page)).text
    assert "Endorsement withheld by IGfL" in page and "Retention is unclear" in page
    endorsed = await submit(
        people["rita"], w.page, action="endorse", document=w.isa_id, decision="endorse"
    )
    assert endorsed.status_code == 303
    page = (await people["ann"].get(w.page)).text
    assert "Endorsed by IGfL" in page
    library = (await people["hal"].get("/agreements/endorsed")).text
    assert f'data-project="{w.project_id}"' in library

    await edit(w, people["ann"], w.isa_id, "A later change")
    page = await until(people["ann"], w.page, "stale: the agreement changed since")
    library = (await people["hal"].get("/agreements/endorsed")).text
    assert f'data-project="{w.project_id}"' not in library


async def test_another_borough_adopts_the_endorsed_agreement_and_sees_its_changes(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    await edit(w, people["ann"], w.isa_id, "Share the outreach list weekly")
    await submit(people["ann"], w.page, action="invite_body", organisation=str(w.orgs["IGFL"]))
    await submit(people["rita"], w.page, action="endorse", document=w.isa_id, decision="endorse")
    library = await people["hal"].get("/agreements/endorsed")
    adopted = await people["hal"].post(
        f"/agreements/endorsed/{w.project_id}/adopt",
        data={"csrftoken": csrf_field(library.text)},
    )
    assert adopted.status_code == 303, adopted.text
    new_page = adopted.headers["location"].split("?")[0]
    new_project = new_page.split("/")[2]
    assert new_project.startswith("PRJ-HAC-")
    page = (await people["hal"].get(new_page)).text
    assert f"Adopted from <strong>{w.project_id}</strong>" in page and "endorsed by IGfL" in page
    assert "This agreement is as endorsed" in page
    new_isa = re.findall(r'href="/dpias/([^"]+-ISA)"', page)[0]
    assert new_isa != w.isa_id
    assert (await people["ann"].get(new_page)).status_code == 404  # a copy of their own

    await edit(w, people["hal"], new_isa, "and with the police")
    changed = await until(people["hal"], new_page, 'data-path="need.aims"')
    assert "police" in changed and "1 field of this agreement differs" in changed
    review = (await people["hal"].get(f"/dpias/{new_isa}/workflow")).text
    assert "Changes from the endorsed text" in review and 'data-path="need.aims"' in review
    again = await people["hal"].post(
        f"/agreements/endorsed/{w.project_id}/adopt",
        data={"csrftoken": csrf_field(library.text)},
    )
    assert again.status_code == 303  # adopting twice makes a second copy, never a crash
    not_endorsed = await people["hal"].post(
        f"/agreements/endorsed/{new_project}/adopt", data={"csrftoken": csrf_field(library.text)}
    )
    assert not_endorsed.status_code == 400 and "no valid endorsement" in not_endorsed.text


async def test_owners_remind_the_outstanding_once_a_day(
    world: World, people: dict[str, httpx.AsyncClient]
) -> None:
    w = world
    assert "Remind the outstanding" not in (await people["ian"].get(w.page)).text
    first = await submit(people["ann"], w.page, action="remind")
    assert first.status_code == 303
    page = (await people["ann"].get(first.headers["location"])).text
    # Ian and Bo hold Islington's DPO role, Bo Camden's: one email each per document.
    assert "Reminded 4 signatories" in page and f'id="reminded-{w.dpia_id}"' in page
    again = await submit(people["ann"], w.page, action="remind")
    page = (await people["ann"].get(again.headers["location"])).text
    assert "reminded in the last day already" in page
    engine = create_engine(w.database_url)
    try:
        async with engine.connect() as connection:
            sent = (
                await connection.execute(
                    select(OutboxMessage.recipient, OutboxMessage.dpia_id).where(
                        OutboxMessage.subject.like("Please sign%")
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert sorted(sent) == sorted(
        [
            ("bo@example.org", w.dpia_id),
            ("ian@example.org", w.dpia_id),
            ("bo@example.org", w.isa_id),
            ("ian@example.org", w.isa_id),
        ]
    )
