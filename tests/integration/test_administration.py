"""Administration through the service, on SQLite and PostgreSQL: every change is chained in
the administration's audit trail in its own transaction, with who, how, before and after;
altering any stored event breaks verification; the command line records its changes too."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.cli import main
from server.domain.administration import AdminChannel, Standing
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, InvalidInput
from server.services.accounts import CurrentUser, password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.dpias import DpiaService
from server.services.passwords import PasswordResets
from server.storage.database import create_engine, migrate
from server.storage.models import AdminAuditEvent, OutboxMessage, User
from server.storage.updates import SqlUpdateStore

pytestmark = pytest.mark.asyncio
PASSWORD = "correct horse battery"
FAST = password_hasher("fast-for-tests")
ROOT = Actor("user:0", AdminChannel.BROWSER, Standing(True, frozenset()), "Root")


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    admin: Administration
    dpias: DpiaService
    cam: int
    nlft: int
    ada: int  # Camden's administrator


@pytest_asyncio.fixture
async def w(database_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    passwords = PasswordResets(sessions, base_url="https://dpia.test", mail_from="a@b.example")
    admin = Administration(sessions, passwords, AdminAuditTrail(sessions), hasher=FAST)
    cam = (await admin.create_organisation(ROOT, "cam", "London Borough of Camden")).id
    nlft = (await admin.create_organisation(ROOT, "NLFT", "The Trust")).id
    ada = await admin.invite(
        ROOT, cam, "ada@camden.example", "Ada Admin", "admin", password=PASSWORD
    )
    try:
        yield World(sessions, admin, DpiaService(sessions, SqlUpdateStore(engine)), cam, nlft, ada)
    finally:
        await engine.dispose()


def _ada(w: World) -> Actor:
    return Actor(f"user:{w.ada}", AdminChannel.BROWSER, Standing(False, frozenset({w.cam})), "Ada")


async def _events(w: World) -> list[AdminAuditEvent]:
    async with w.sessions() as session:
        return list(
            await session.scalars(select(AdminAuditEvent).order_by(AdminAuditEvent.position))
        )


async def _a_day_of_administration(w: World) -> int:
    ada = _ada(w)
    ben = await w.admin.invite(ada, w.cam, "Ben@Camden.example", "Ben Smith")
    await w.admin.change_role(ada, w.cam, ben, "admin")
    await w.admin.set_active(ada, ben, False, w.cam)
    await w.admin.set_active(ada, ben, True, w.cam)
    await w.admin.update_organisation(
        ROOT, "CAM", new_code="LBC", name="Camden Council", outside_partners=False
    )
    return ben


async def test_every_change_is_chained_with_actor_channel_before_and_after(w: World) -> None:
    ben = await _a_day_of_administration(w)
    events = await _events(w)
    assert [e.kind for e in events] == [
        "organisation_created",
        "organisation_created",
        "person_invited",
        "person_invited",
        "role_changed",
        "person_suspended",
        "person_reinstated",
        "organisation_changed",
    ]
    role = json.loads(events[4].data)
    assert role == {
        "before": {"email": "ben@camden.example", "role": "member"},
        "after": {"email": "ben@camden.example", "role": "admin"},
    }
    assert events[4].actor == f"user:{w.ada}" and events[4].channel == "browser"
    assert events[4].organisation_id == w.cam
    renamed = json.loads(events[7].data)
    assert renamed["before"]["code"] == "CAM" and renamed["after"]["code"] == "LBC"
    assert renamed["after"]["outside_partners"] is False
    assert await w.admin.audit.verify() is None
    # No secret is recorded: not the password, its hash, nor the invitation's link.
    async with w.sessions() as session:
        hashes = list(await session.scalars(select(User.password_hash)))
        link = (await session.scalars(select(OutboxMessage.message))).all()
    assert len(link) == 1 and b"/reset-password/" in link[0]
    everything = " ".join(e.data for e in events)
    assert PASSWORD not in everything and "reset-password" not in everything
    assert not any(h in everything for h in hashes)
    assert ben


async def test_an_invitation_mails_a_link_to_choose_a_password(w: World) -> None:
    await w.admin.invite(_ada(w), w.cam, "ben@camden.example", "Ben Smith")
    async with w.sessions() as session:
        mail = await session.scalar(select(OutboxMessage))
    assert mail is not None and mail.recipient == "ben@camden.example"
    assert mail.subject == "You are invited to OpenDPIA by London Borough of Camden"
    assert b"7 days" in mail.message


@pytest.mark.parametrize("position", [1, 3, 5, 8])
async def test_altering_any_stored_admin_event_breaks_verification(w: World, position: int) -> None:
    await _a_day_of_administration(w)
    target = (await _events(w))[position - 1].id
    async with w.sessions.begin() as session:
        await session.execute(
            update(AdminAuditEvent).where(AdminAuditEvent.id == target).values(actor="user:99")
        )
    broken = await w.admin.audit.verify()
    assert broken is not None and broken.position == position and "altered" in broken.reason


async def test_deleting_the_last_admin_event_breaks_verification(w: World) -> None:
    await _a_day_of_administration(w)
    last = (await _events(w))[-1].id
    async with w.sessions.begin() as session:
        await session.execute(delete(AdminAuditEvent).where(AdminAuditEvent.id == last))
    broken = await w.admin.audit.verify()
    assert broken is not None and "8 were written" in broken.reason


async def test_the_last_administrator_cannot_demote_or_suspend_themselves(w: World) -> None:
    with pytest.raises(Conflict, match="last administrator"):
        await w.admin.change_role(_ada(w), w.cam, w.ada, "member")
    with pytest.raises(Conflict, match="last administrator"):
        await w.admin.set_active(_ada(w), w.ada, False, w.cam)
    ben = await w.admin.invite(_ada(w), w.cam, "ben@camden.example", "Ben", "admin")
    await w.admin.change_role(_ada(w), w.cam, w.ada, "member")  # now Ben keeps it
    assert (await w.admin.person(ROOT, w.cam, w.ada)).role.value == "member"
    assert len(await _events(w)) == 5  # refusals record nothing
    assert ben


async def test_two_administrators_demoting_each_other_at_once_leave_one(w: World) -> None:
    ben = await w.admin.invite(_ada(w), w.cam, "ben@camden.example", "Ben", "admin")
    as_ben = Actor(f"user:{ben}", AdminChannel.BROWSER, Standing(False, frozenset({w.cam})))
    outcomes = await asyncio.gather(
        w.admin.change_role(_ada(w), w.cam, ben, "member"),
        w.admin.change_role(as_ben, w.cam, w.ada, "member"),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "PersonView"]
    roles = {p.email: p.role.value for p in await w.admin.people(ROOT, w.cam)}
    assert sorted(roles.values()) == ["admin", "member"]
    assert await w.admin.audit.verify() is None


async def test_the_last_deployment_administrator_is_kept(w: World) -> None:
    await w.admin.set_deployment_admin(ROOT, "ada@camden.example", True)
    ben = await w.admin.invite(ROOT, w.cam, "ben@camden.example", "Ben", "admin")
    with pytest.raises(Conflict, match="last deployment administrator"):
        await w.admin.set_deployment_admin(ROOT, "ada@camden.example", False)
    with pytest.raises(Conflict, match="last deployment administrator"):
        await w.admin.set_active(ROOT, w.ada, False)
    await w.admin.set_deployment_admin(ROOT, "ben@camden.example", True)
    await w.admin.set_active(ROOT, w.ada, False)  # Ben manages the deployment now
    with pytest.raises(Conflict, match="last deployment administrator"):
        await w.admin.set_deployment_admin(ROOT, "ben@camden.example", False)
    assert ben


async def test_an_administrator_cannot_reach_another_organisation(w: World) -> None:
    bob = await w.admin.invite(ROOT, w.nlft, "bob@nlft.example", "Bob", password=PASSWORD)
    with pytest.raises(DocumentNotFound):
        await w.admin.people(_ada(w), w.nlft)
    with pytest.raises(DocumentNotFound):
        await w.admin.set_active(_ada(w), bob, False, w.nlft)
    with pytest.raises(DocumentNotFound):  # not Camden's person, even through Camden's page
        await w.admin.set_active(_ada(w), bob, False, w.cam)
    with pytest.raises(DocumentNotFound):
        await w.admin.create_organisation(_ada(w), "POL", "Police")


async def test_bad_values_are_refused_with_what_to_do(w: World) -> None:
    with pytest.raises(Conflict, match="code CAM exists"):
        await w.admin.create_organisation(ROOT, "cam", "Camden again")
    with pytest.raises(Conflict, match="code NLFT exists"):
        await w.admin.update_organisation(
            ROOT, "CAM", new_code="NLFT", name="Camden", outside_partners=True
        )
    with pytest.raises(InvalidInput, match="A name is required"):
        await w.admin.create_organisation(ROOT, "POL", "   ")
    with pytest.raises(InvalidInput, match="longer than 200"):
        await w.admin.create_organisation(ROOT, "POL", "x" * 201)
    with pytest.raises(InvalidInput, match="2 to 12 letters"):
        await w.admin.create_organisation(ROOT, "TOO-LONG-CODE", "Police")
    with pytest.raises(Conflict, match="There is an account for"):
        await w.admin.invite(ROOT, w.cam, "ADA@camden.example", "Ada 2")
    assert len(await _events(w)) == 3


async def test_a_lead_that_forbids_outside_partners_refuses_them_at_invitation(w: World) -> None:
    await w.admin.invite(ROOT, w.nlft, "bob@nlft.example", "Bob", password=PASSWORD)
    owner = CurrentUser(w.ada, "ada@camden.example", "Ada", (w.cam,))
    dpia_id = await w.dpias.create(owner, "Sharing data", w.cam)
    await w.admin.update_organisation(
        ROOT, "CAM", new_code="CAM", name="London Borough of Camden", outside_partners=False
    )
    with pytest.raises(AccessDenied, match="does not allow partners from outside"):
        await w.dpias.invite(owner, dpia_id, "jo@charity.example", "commenter", "Jo")
    with pytest.raises(AccessDenied):
        await w.dpias.invite(owner, dpia_id, "bob@nlft.example", "editor")
    await w.dpias.add_party(owner, dpia_id, "joint_controller", organisation_id=w.nlft)
    await w.dpias.invite(owner, dpia_id, "bob@nlft.example", "editor")  # now a party's
    await w.admin.update_organisation(
        ROOT, "CAM", new_code="CAM", name="London Borough of Camden", outside_partners=True
    )
    await w.dpias.invite(owner, dpia_id, "jo@charity.example", "commenter", "Jo")


async def test_the_command_line_records_its_changes_and_verifies_every_chain(
    w: World,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENDPIA_ENV", "development")

    def run(*argv: str, stdin: str = "") -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main(list(argv))

    assert await asyncio.to_thread(run, "create-org", "--code", "POL", "--name", "Police") == 0
    created = await asyncio.to_thread(
        run,
        "create-user",
        "--email",
        "pat@police.example",
        "--name",
        "Pat",
        "--org",
        "POL",
        "--admin",
        "--deployment-admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created == 0
    member = ("create-user", "--email", "sam@police.example", "--name", "Sam", "--org", "POL")
    assert await asyncio.to_thread(run, *member, "--password-stdin", stdin=PASSWORD) == 0
    # The rules hold on the command line too: Pat is the police's last administrator, and
    # the deployment's last deployment administrator.
    assert await asyncio.to_thread(run, "suspend-user", "--email", "pat@police.example") == 2
    assert "This is the last" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "suspend-user", "--email", "sam@police.example") == 0
    assert await asyncio.to_thread(run, "grant-deployment-admin", "ada@camden.example") == 0
    events = (await _events(w))[-6:]
    assert [e.kind for e in events] == [
        "organisation_created",
        "person_invited",
        "deployment_admin_granted",
        "person_invited",
        "person_suspended",
        "deployment_admin_granted",
    ]
    assert {e.channel for e in events} == {"cli"}
    assert all(e.actor.startswith("cli:") for e in events)
    assert (await w.admin.standing(w.ada)).deployment_admin
    capsys.readouterr()
    assert await asyncio.to_thread(run, "audit", "verify") == 0
    assert "administration: audit chain of 9 events holds" in capsys.readouterr().out
    async with w.sessions.begin() as session:
        await session.execute(
            update(AdminAuditEvent).where(AdminAuditEvent.id == events[1].id).values(data="{}")
        )
    assert await asyncio.to_thread(run, "audit", "verify", "admin") == 1
    assert "administration: audit chain broken at event #5" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "audit", "verify") == 1
