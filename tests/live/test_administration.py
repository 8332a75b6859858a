"""Administration over real HTTP: deployment administrators manage organisations, an
organisation's administrators its people (invite, role, suspend, reinstate, each confirmed)
and see its DPIAs; nobody else sees any of it, and no input gives a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.administration import AdminChannel, Standing
from server.services.accounts import CurrentUser, password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.dpias import DpiaService
from server.services.passwords import PasswordResets
from server.storage.database import create_engine
from server.storage.models import AdminAuditEvent, OutboxMessage
from server.storage.updates import SqlUpdateStore
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, csrf_field, prepare, session_socket, signed_in

pytestmark = pytest.mark.asyncio
SEEDED = 7  # audit events of _seed: two organisations, four people, one grant
ROOT = Actor("user:0", AdminChannel.CLI, Standing(True, frozenset()), "set-up")


@dataclass
class Seeded:
    ids: dict[str, int]
    dpia_id: str


async def _seed(database_url: str) -> Seeded:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    passwords = PasswordResets(sessions, base_url="http://x.test", mail_from="a@b.example")
    hasher = password_hasher("fast-for-tests")
    admin = Administration(sessions, passwords, AdminAuditTrail(sessions), hasher=hasher)
    cam = (await admin.create_organisation(ROOT, "CAM", "London Borough of Camden")).id
    nlft = (await admin.create_organisation(ROOT, "NLFT", "North London Trust")).id
    people = {
        "root": (cam, "member"),
        "ada": (cam, "admin"),
        "max": (cam, "member"),
        "nia": (nlft, "admin"),
    }
    ids = {}
    for who, (org, role) in people.items():
        email = f"{who}@{'camden' if org == cam else 'nlft'}.example"
        ids[who] = await admin.invite(ROOT, org, email, who.title(), role, password=PASSWORD)
    await admin.set_deployment_admin(ROOT, "root@camden.example", True)
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    owner = CurrentUser(ids["max"], "max@camden.example", "Max", (cam,))
    dpia_id = await dpias.create(owner, "Rough sleeping data", cam)
    await engine.dispose()
    return Seeded(ids, dpia_id)


@dataclass
class World:
    live: LiveServer
    seeded: Seeded
    base: str

    async def client(self, who: str) -> httpx.AsyncClient:
        domain = "nlft" if who == "nia" else "camden"
        return await signed_in(self.base, f"{who}@{domain}.example")

    database_url: str

    async def events(self) -> list[AdminAuditEvent]:
        engine = create_engine(self.database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                return list(await session.scalars(select(AdminAuditEvent)))
        finally:
            await engine.dispose()

    async def outbox(self, recipient: str) -> OutboxMessage | None:
        engine = create_engine(self.database_url)
        try:
            async with async_sessionmaker(engine)() as session:
                query = select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                return await session.scalar(query)
        finally:
            await engine.dispose()


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """The app on SQLite, and on PostgreSQL."""
    prepare(database_url)
    seeded = asyncio.run(_seed(database_url))
    with serving(make_settings(database_url)) as live:
        yield World(live, seeded, f"http://127.0.0.1:{live.port}", database_url)


@pytest_asyncio.fixture
async def ada(world: World) -> AsyncIterator[httpx.AsyncClient]:
    client = await world.client("ada")
    try:
        yield client
    finally:
        await client.aclose()


@pytest_asyncio.fixture
async def root(world: World) -> AsyncIterator[httpx.AsyncClient]:
    client = await world.client("root")
    try:
        yield client
    finally:
        await client.aclose()


async def _post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    """A form on ``path`` posted with the page's CSRF token."""
    page = await client.get(path)
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


PAGES = [
    "/admin",
    "/admin/people",
    "/admin/organisations",
    "/admin/organisations/CAM",
    "/admin/organisations/CAM/people",
    "/admin/organisations/CAM/dpias",
    "/admin/organisations/CAM/audit",
]


async def test_a_member_finds_no_administration(world: World) -> None:
    member = await world.client("max")
    try:
        assert "/admin" not in (await member.get("/dpias")).text
        for path in [*PAGES, f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"]:
            response = await member.get(path)
            assert response.status_code == 404, path
        token = csrf_field((await member.get("/dpias/new")).text)
        forged = await member.post(
            "/admin/organisations", data={"csrftoken": token, "code": "X1", "name": "Mine"}
        )
        assert forged.status_code == 404
        assert len(await world.events()) == SEEDED  # the seeding's, nothing more
    finally:
        await member.aclose()


async def test_an_administrator_of_another_organisation_cannot_see_or_change_ours(
    world: World,
) -> None:
    nia = await world.client("nia")
    max_id = world.seeded.ids["max"]
    try:
        assert (await nia.get("/admin")).headers["location"] == "/admin/organisations/NLFT/people"
        listing = (await nia.get("/admin/organisations")).text
        assert "North London Trust" in listing and "Camden" not in listing
        assert "Add an organisation" not in listing
        for path in [*PAGES[3:], f"/admin/organisations/CAM/people/{max_id}"]:
            assert (await nia.get(path)).status_code == 404, path
        token = csrf_field((await nia.get("/admin/organisations/NLFT/people")).text)
        for path, data in [
            ("/admin/organisations/CAM/people", {"email": "x@y.example", "name": "X"}),
            (f"/admin/organisations/CAM/people/{max_id}", {"action": "suspend", "confirm": "yes"}),
            (f"/admin/organisations/NLFT/people/{max_id}", {"action": "suspend", "confirm": "yes"}),
            ("/admin/organisations/NLFT", {"code": "NLFT", "name": "Renamed"}),
        ]:
            response = await nia.post(path, data={"csrftoken": token, **data})
            assert response.status_code == 404, path
        assert len(await world.events()) == SEEDED
    finally:
        await nia.aclose()


async def test_an_administrator_invites_a_person_who_gets_a_link(
    world: World, ada: httpx.AsyncClient
) -> None:
    assert (await ada.get("/admin")).headers["location"] == "/admin/organisations/CAM/people"
    response = await _post(
        ada,
        "/admin/organisations/CAM/people",
        email="Zoe@Camden.example",
        name="Zoe New",
        role="member",
    )
    assert response.status_code == 303
    page = (await ada.get(response.headers["location"])).text
    assert "Invited." in page
    row = page.split("zoe@camden.example", 1)[1].split("</tr>", 1)[0]
    assert "Member" in row and "Active" in row
    mail = await world.outbox("zoe@camden.example")
    assert mail is not None and b"/reset-password/" in mail.message
    invited = (await world.events())[-1]
    assert invited.kind == "person_invited" and invited.channel == "browser"
    assert invited.actor == f"user:{world.seeded.ids['ada']}"


async def test_a_role_change_waits_for_confirmation(world: World, ada: httpx.AsyncClient) -> None:
    path = f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"
    asked = await _post(ada, path, action="role", role="admin")
    assert asked.status_code == 200
    assert "Change Max&#39;s role to administrator?" in asked.text
    assert 'name="confirm" value="yes"' in asked.text
    assert ">Member<" in (await ada.get(path)).text  # nothing changed yet
    assert len(await world.events()) == SEEDED
    done = await ada.post(
        path,
        data={
            "csrftoken": csrf_field(asked.text),
            "action": "role",
            "role": "admin",
            "confirm": "yes",
        },
    )
    assert done.status_code == 303
    assert 'id="person-role">Administrator<' in (await ada.get(done.headers["location"])).text
    assert (await world.events())[-1].kind == "role_changed"


async def test_suspending_closes_the_persons_open_editor_and_reinstating_lets_them_back(
    world: World, ada: httpx.AsyncClient
) -> None:
    person = await world.client("max")
    editor = await session_socket(world.live.port, world.seeded.dpia_id, person)
    path = f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"
    try:
        asked = await _post(ada, path, action="suspend")
        assert asked.status_code == 200 and "Suspend Max?" in asked.text
        assert (await person.get("/dpias")).status_code == 200  # not yet
        token = csrf_field(asked.text)
        done = await ada.post(
            path, data={"csrftoken": token, "action": "suspend", "confirm": "yes"}
        )
        assert done.status_code == 303
        code, reason = await editor.wait_closed(timeout=10)
        assert code == 4403 and reason is not None
        assert (await person.get("/dpias")).status_code == 303  # signed out
        assert 'id="person-state">Suspended<' in (await ada.get(path)).text
        again = await ada.post(
            path, data={"csrftoken": token, "action": "reinstate", "confirm": "yes"}
        )
        assert again.status_code == 303
        back = await world.client("max")
        await back.aclose()
        kinds = [e.kind for e in await world.events()][-2:]
        assert kinds == ["person_suspended", "person_reinstated"]
    finally:
        await editor.close()
        await person.aclose()


async def test_the_last_administrator_is_told_why_they_cannot_demote_themselves(
    world: World, ada: httpx.AsyncClient
) -> None:
    path = f"/admin/organisations/CAM/people/{world.seeded.ids['ada']}"
    asked = await _post(ada, path, action="suspend")
    assert "This is your own account." in asked.text
    token = csrf_field(asked.text)
    for data in ({"action": "suspend"}, {"action": "role", "role": "member"}):
        refused = await ada.post(path, data={"csrftoken": token, "confirm": "yes", **data})
        assert refused.status_code == 409
        assert "last administrator: make someone else an administrator first" in refused.text
    assert len(await world.events()) == SEEDED


async def test_an_administrator_sees_the_organisations_dpias(
    world: World, ada: httpx.AsyncClient
) -> None:
    page = (await ada.get("/admin/organisations/CAM/dpias")).text
    assert f'href="/dpias/{world.seeded.dpia_id}"' in page
    assert "Rough sleeping data" in page and ">Draft<" in page and ">Lead<" in page
    audit = (await ada.get("/admin/organisations/CAM/audit")).text
    assert "Person invited" in audit and "Command line" in audit
    assert "Role: Administrator" in audit and "role: admin" not in audit


async def test_a_deployment_administrator_creates_and_edits_an_organisation(
    world: World, root: httpx.AsyncClient
) -> None:
    created = await _post(
        root, "/admin/organisations", code="pol", name="Met Police", outside_partners="yes"
    )
    assert created.status_code == 303
    assert created.headers["location"] == "/admin/organisations/POL/people"
    listing = (await root.get("/admin/organisations")).text
    assert "Met Police" in listing and 'href="/admin/organisations/POL/sign-in"' in listing
    edited = await _post(root, "/admin/organisations/POL", code="MPS", name="Metropolitan Police")
    assert edited.status_code == 303
    assert (await root.get("/admin/organisations/POL/people")).status_code == 404
    page = (await root.get("/admin/organisations/MPS")).text
    assert 'value="Metropolitan Police"' in page
    assert 'name="outside_partners" value="yes">' in page  # unchecked now
    # And it manages any organisation's people.
    assert (await root.get("/admin/organisations/NLFT/people")).status_code == 200
    kinds = [e.kind for e in await world.events()][-2:]
    assert kinds == ["organisation_created", "organisation_changed"]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"code": "CAM", "name": "Camden again"}, 409, "An organisation with code CAM exists"),
        ({"code": "POL", "name": "  "}, 400, "A name is required"),
        ({"code": "POL", "name": "x" * 201}, 400, "longer than 200 characters"),
        ({"code": "POL", "name": "x" * 1001}, 400, "longer than 1000 characters"),
        ({"code": "P", "name": "Police"}, 400, "2 to 12 letters or digits"),
        ({"code": "<b>", "name": "Police"}, 400, "2 to 12 letters or digits"),
    ],
)
async def test_bad_organisation_values_are_explained(
    world: World, root: httpx.AsyncClient, data: dict[str, str], status: int, message: str
) -> None:
    response = await _post(root, "/admin/organisations", **data)
    assert response.status_code == status
    assert message in response.text
    assert 'role="alert"' in response.text
    assert len(await world.events()) == SEEDED


async def test_bad_people_values_and_unknown_ids_are_explained(
    world: World, root: httpx.AsyncClient
) -> None:
    people = "/admin/organisations/CAM/people"
    for data, status, message in [
        ({"email": "not-an-email", "name": "X"}, 400, "This is not an email address"),
        (
            {"email": "ada@camden.example", "name": "X"},
            409,
            "There is an account for ada@camden.example already",
        ),
        ({"email": "new@camden.example", "name": ""}, 400, "A name is required"),
        ({"email": "new@camden.example", "name": "N", "role": "owner"}, 400, "Choose a role"),
    ]:
        response = await _post(root, people, **data)
        assert response.status_code == status and message in response.text, data
    nia = f"/admin/organisations/CAM/people/{world.seeded.ids['nia']}"
    for path in [
        "/admin/organisations/ZZZ/people",
        "/admin/organisations/not%20a%20code/dpias",
        "/admin/organisations/CAM/people/999999",
        "/admin/organisations/CAM/people/12abc",
        "/admin/organisations/CAM/people/99999999999999999999999",
        nia,
    ]:
        assert (await root.get(path)).status_code == 404, path
    max_page = f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"
    odd = await _post(root, max_page, action="delete", confirm="yes")
    assert odd.status_code == 400 and "Choose what to do" in odd.text
    for confirm in ("yes", ""):  # refused before asking, not only once confirmed
        odd_role = await _post(root, max_page, action="role", role="owner", confirm=confirm)
        assert odd_role.status_code == 400 and "Choose a role" in odd_role.text
    assert len(await world.events()) == SEEDED


async def test_a_post_without_the_csrf_token_changes_nothing(
    world: World, root: httpx.AsyncClient
) -> None:
    max_page = f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"
    for path, data in [
        ("/admin/organisations", {"code": "POL", "name": "Police"}),
        ("/admin/organisations/CAM/people", {"email": "n@camden.example", "name": "N"}),
        (max_page, {"action": "suspend", "confirm": "yes"}),
    ]:
        response = await root.post(path, data=data)
        assert response.status_code == 403, path
    assert len(await world.events()) == SEEDED


async def test_a_lead_that_forbids_outside_partners_refuses_them_on_the_participants_page(
    world: World, root: httpx.AsyncClient
) -> None:
    changed = await _post(
        root, "/admin/organisations/CAM", code="CAM", name="London Borough of Camden"
    )
    assert changed.status_code == 303  # the box left unticked: outside partners not allowed
    owner = await world.client("max")
    path = f"/dpias/{world.seeded.dpia_id}/participants"
    try:
        for email in ("jo@charity.example", "nia@nlft.example"):
            refused = await _post(
                owner, path, action="invite", email=email, role="commenter", name="Jo"
            )
            assert refused.status_code == 403, email
            assert "does not allow partners from outside" in refused.text
        inside = await _post(
            owner, path, action="invite", email="ada@camden.example", role="viewer"
        )
        assert inside.status_code == 303
    finally:
        await owner.aclose()


NASTY = ["", " ", "\x00", "\u202e", "é" * 300, "x" * 5000, "<script>", "'; DROP TABLE users; --"]


async def test_no_value_in_any_administration_form_gives_a_server_error(
    world: World, root: httpx.AsyncClient
) -> None:
    max_page = f"/admin/organisations/CAM/people/{world.seeded.ids['max']}"
    token = csrf_field((await root.get("/admin/organisations")).text)
    forms = {
        "/admin/organisations": ("code", "name", "outside_partners"),
        "/admin/organisations/NLFT": ("code", "name", "outside_partners"),
        "/admin/organisations/CAM/people": ("email", "name", "role"),
        max_page: ("action", "role", "confirm"),
    }
    for path, names in forms.items():
        for value in NASTY:
            for name in names:
                data = {"csrftoken": token, **dict.fromkeys(names, "ok"), name: value}
                response = await root.post(path, data=data)
                assert response.status_code < 500, (path, name, value[:20])
                assert "<script>" not in response.text.replace("&lt;script&gt;", "")
    assert (await root.get("/admin/organisations/NLFT")).status_code == 200
