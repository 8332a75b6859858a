"""Sign-off by every party, endorsement, reminders and adoption through the services, on
SQLite and PostgreSQL: signatory roles set by an organisation's administrator (chained with
before and after), signatures for one party in one capacity, approval, staleness, a
reviewing body's endorsement, reminders once a day, and adopting an endorsed agreement."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.domain.administration import AdminChannel, Standing
from server.domain.changes import ChangeEvent
from server.domain.errors import AccessDenied, DocumentNotFound, InvalidInput
from server.domain.parties import Capacity, SignatureState
from server.domain.projects import DocumentKind
from server.services.accounts import CurrentUser
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.adoption import AdoptionService
from server.services.dpias import DpiaService
from server.services.parties import PartySignOffService
from server.services.passwords import PasswordResets
from server.services.projects import ProjectService
from server.storage.database import create_engine, migrate
from server.storage.models import (
    AdminAuditEvent,
    Membership,
    Organisation,
    OutboxMessage,
    SignOffReminder,
)
from server.storage.updates import SqlUpdateStore
from tests.support.parties import joint_project, party_service
from tests.support.review import FAST, PASSWORD, record_services, text
from tests.support.review import edit as edit_world

pytestmark = pytest.mark.asyncio
ROOT = Actor("user:0", AdminChannel.BROWSER, Standing(True, frozenset()), "Root")


@dataclass
class World:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    store: SqlUpdateStore
    admin: Administration
    parties: PartySignOffService
    adoption: AdoptionService
    projects: ProjectService
    dpias: DpiaService
    orgs: dict[str, int]
    people: dict[str, CurrentUser]
    project_id: str
    dpia_id: str
    isa_id: str

    def org_admin(self, code: str) -> Actor:
        return Actor("user:0", AdminChannel.BROWSER, Standing(False, frozenset({self.orgs[code]})))


@pytest_asyncio.fixture
async def w(database_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    passwords = PasswordResets(sessions, base_url="https://dpia.test", mail_from="a@b.example")
    admin = Administration(sessions, passwords, AdminAuditTrail(sessions), hasher=FAST)
    orgs = {}
    for code, name in (
        ("CAM", "Camden"),
        ("ISL", "Islington"),
        ("IGFL", "IGfL"),
        ("HAC", "Hackney"),
    ):
        orgs[code] = (await admin.create_organisation(ROOT, code, name)).id
    await admin.set_reviewing_body(ROOT, "IGFL", True)
    people: dict[str, CurrentUser] = {}
    for key, code in (
        ("ann", "CAM"),
        ("ian", "ISL"),
        ("bo", "CAM"),
        ("rita", "IGFL"),
        ("hal", "HAC"),
    ):
        email = f"{key}@{code.lower()}.example"
        user_id = await admin.invite(ROOT, orgs[code], email, key.title(), password=PASSWORD)
        people[key] = CurrentUser(user_id, email, key.title(), (orgs[code],))
    # Bo works for both Camden and Islington, and is DPO of each.
    async with sessions.begin() as session:
        session.add(Membership(user_id=people["bo"].id, organisation_id=orgs["ISL"], role="member"))
    people["bo"] = CurrentUser(
        people["bo"].id, people["bo"].email, "Bo", (orgs["CAM"], orgs["ISL"])
    )
    store = SqlUpdateStore(engine)
    dpias = DpiaService(sessions, store)
    projects = ProjectService(sessions, dpias)
    audit, history, signoffs, _, _ = record_services(sessions, store, dpias)
    parties = party_service(sessions, store, dpias, projects, history, signoffs, audit)
    ann = people["ann"]
    project_id, dpia_id, isa_id = await joint_project(
        sessions,
        dpias,
        ann,
        (orgs["ISL"], "Islington"),
        [people[key].email for key in ("ian", "bo", "hal")],
    )
    try:
        yield World(
            engine,
            sessions,
            store,
            admin,
            parties,
            AdoptionService(sessions, dpias=dpias, projects=projects, history=history, store=store),
            projects,
            dpias,
            orgs,
            people,
            project_id,
            dpia_id,
            isa_id,
        )
    finally:
        await engine.dispose()


async def roles(w: World, key: str, code: str, *capacities: str) -> None:
    await w.admin.set_signatory_roles(
        w.org_admin(code), w.orgs[code], w.people[key].id, list(capacities)
    )


async def edit(w: World, document_id: str, words: str) -> None:
    """Change a document's text and let the staleness recorder notice."""

    @dataclass
    class One:
        store: SqlUpdateStore
        dpia_id: str

    await edit_world(One(w.store, document_id), text("need.aims", words))  # type: ignore[arg-type]
    now = datetime.now(UTC)
    await w.parties._signoffs.mark_stale(
        [ChangeEvent(document_id, "user:1", "browser", "need.aims", None, now, now, 1, words)]
    )


def states(status: Any, document_id: str) -> dict[tuple[str, str], SignatureState]:
    document = next(d for d in status.documents if d.document_id == document_id)
    return {(r.party.name, r.capacity.value): r.state for r in document.required}


async def test_signatory_roles_are_set_by_the_organisations_administrator_with_before_and_after(
    w: World,
) -> None:
    await roles(w, "ann", "CAM", "dpo", "siro")
    person = await w.admin.person(w.org_admin("CAM"), w.orgs["CAM"], w.people["ann"].id)
    assert person.signatory_roles == ("dpo", "siro")
    with pytest.raises(DocumentNotFound):  # Islington's administrator does not administer Camden
        await w.admin.set_signatory_roles(
            w.org_admin("ISL"), w.orgs["CAM"], w.people["ann"].id, ["dpo"]
        )
    with pytest.raises(InvalidInput, match="no signatory role"):
        await roles(w, "ann", "CAM", "chief")
    async with w.sessions() as session:
        events = list(
            await session.scalars(
                select(AdminAuditEvent).where(AdminAuditEvent.kind == "signatory_roles_changed")
            )
        )
    assert [json.loads(e.data) for e in events] == [
        {
            "before": {"email": "ann@cam.example", "signatory_roles": ""},
            "after": {"email": "ann@cam.example", "signatory_roles": "dpo,siro"},
        }
    ]
    assert await w.admin.audit.verify() is None


async def test_one_partys_signature_never_stands_for_another_and_approval_needs_every_party(
    w: World,
) -> None:
    await roles(w, "ann", "CAM", "dpo")
    await roles(w, "ian", "ISL", "dpo")
    ann, ian = w.people["ann"], w.people["ian"]
    await w.parties.sign_for_party(ann, w.dpia_id, decision="approve")
    status = await w.parties.status(ann, w.project_id)
    assert states(status, w.dpia_id) == {
        ("Camden", "dpo"): SignatureState.SIGNED,
        ("Islington", "dpo"): SignatureState.OUTSTANDING,
    }
    assert not status.approved
    with pytest.raises(AccessDenied, match="not a member of Islington"):
        await w.parties.sign_for_party(
            ann, w.dpia_id, decision="approve", organisation_id=w.orgs["ISL"]
        )
    await w.parties.sign_for_party(ian, w.dpia_id, decision="approve")
    status = await w.parties.status(ann, w.project_id)
    assert status.document(DocumentKind.DPIA).approved  # type: ignore[union-attr]
    assert not status.approved  # the ISA is not signed yet
    await w.parties.sign_for_party(ann, w.isa_id, decision="approve")
    await w.parties.sign_for_party(ian, w.isa_id, decision="approve")
    assert (await w.parties.status(ian, w.project_id)).approved


async def test_a_capacity_not_held_is_refused_and_a_person_without_roles_cannot_sign(
    w: World,
) -> None:
    await roles(w, "ann", "CAM", "dpo")
    with pytest.raises(AccessDenied, match="do not hold the role Senior information risk"):
        await w.parties.sign_for_party(
            w.people["ann"], w.dpia_id, decision="approve", capacity="siro"
        )
    with pytest.raises(AccessDenied, match="no signatory role"):
        await w.parties.sign_for_party(w.people["ian"], w.dpia_id, decision="approve")
    with pytest.raises(AccessDenied, match="not a member of any organisation"):
        await w.parties.sign_for_party(w.people["hal"], w.dpia_id, decision="approve")


async def test_a_person_in_two_parties_signs_for_the_one_they_choose_and_only_it(w: World) -> None:
    await roles(w, "bo", "CAM", "dpo")
    await roles(w, "bo", "ISL", "dpo")
    bo = w.people["bo"]
    with pytest.raises(InvalidInput, match="choose which"):
        await w.parties.sign_for_party(bo, w.dpia_id, decision="approve")
    await w.parties.sign_for_party(
        bo, w.dpia_id, decision="approve", organisation_id=w.orgs["ISL"], capacity="dpo"
    )
    assert states(await w.parties.status(bo, w.project_id), w.dpia_id) == {
        ("Camden", "dpo"): SignatureState.OUTSTANDING,
        ("Islington", "dpo"): SignatureState.SIGNED,
    }
    options = (await w.parties.status(bo, w.project_id)).options
    assert {(o.party.name, o.capacity) for o in options} == {
        ("Camden", Capacity.DPO),
        ("Islington", Capacity.DPO),
    }


async def test_a_change_makes_party_signatures_stale_and_the_project_unapproved(w: World) -> None:
    await roles(w, "ann", "CAM", "dpo")
    await roles(w, "ian", "ISL", "dpo")
    for person in ("ann", "ian"):
        await w.parties.sign_for_party(w.people[person], w.dpia_id, decision="approve")
    assert (
        (await w.parties.status(w.people["ann"], w.project_id)).document(DocumentKind.DPIA).approved
    )  # type: ignore[union-attr]
    await edit(w, w.dpia_id, "and share addresses with the police")
    status = await w.parties.status(w.people["ann"], w.project_id)
    assert set(states(status, w.dpia_id).values()) == {SignatureState.STALE}
    assert not status.document(DocumentKind.DPIA).approved  # type: ignore[union-attr]
    waiting = await w.parties.outstanding_for(w.people["ian"])
    assert [(o.document_id, o.party, o.capacity, o.stale) for o in waiting] == [
        (w.dpia_id, "Islington", Capacity.DPO, True),
        (w.isa_id, "Islington", Capacity.DPO, False),
    ]


async def test_endorsement_is_given_or_withheld_with_reasons_and_goes_stale(w: World) -> None:
    rita = w.people["rita"]
    with pytest.raises(DocumentNotFound):  # not invited yet: she cannot even see it
        await w.parties.endorse(rita, w.isa_id, decision="endorse")
    with pytest.raises(InvalidInput, match="not a reviewing body"):
        await w.parties.invite_reviewing_body(w.people["ann"], w.project_id, w.orgs["HAC"])
    await w.parties.invite_reviewing_body(w.people["ann"], w.project_id, w.orgs["IGFL"])
    access = await w.dpias.access(rita, w.isa_id)
    assert access.role.value == "commenter"
    # The processing's parties (the DPIA's participants page) stay the controllers.
    parties = await w.dpias.parties(w.people["ann"], w.isa_id)
    assert [p.name for p in parties] == ["Camden", "Islington"]
    with pytest.raises(InvalidInput, match="needs reasons"):
        await w.parties.endorse(rita, w.isa_id, decision="withhold")
    with pytest.raises(InvalidInput, match="information sharing agreement"):
        await w.parties.endorse(rita, w.dpia_id, decision="endorse")
    with pytest.raises(AccessDenied, match="reviewing body"):
        await w.parties.endorse(w.people["ann"], w.isa_id, decision="endorse")
    await w.parties.endorse(rita, w.isa_id, decision="withhold", reasons="Retention is unclear")
    await w.parties.endorse(rita, w.isa_id, decision="endorse")
    isa = (await w.parties.status(w.people["ann"], w.project_id)).document(DocumentKind.ISA)
    assert isa is not None and isa.endorsement is not None
    assert (isa.endorsement.decision, isa.endorsement.party, isa.endorsement.state.value) == (
        "endorse",
        "IGfL",
        "valid",
    )
    assert [e.project_id for e in await w.adoption.endorsed()] == [w.project_id]
    await edit(w, w.isa_id, "A later change")
    isa = (await w.parties.status(w.people["ann"], w.project_id)).document(DocumentKind.ISA)
    assert isa is not None and isa.endorsement is not None
    assert isa.endorsement.state.value == "stale"
    assert await w.adoption.endorsed() == []


async def test_reminders_reach_each_outstanding_signatory_once_a_day(w: World) -> None:
    await roles(w, "ann", "CAM", "dpo")
    await roles(w, "ian", "ISL", "dpo")
    await w.parties.sign_for_party(w.people["ann"], w.dpia_id, decision="approve")
    with pytest.raises(DocumentNotFound):  # a commenter does not manage the project
        await w.parties.remind(w.people["ian"], w.project_id)
    first = await w.parties.remind(w.people["ann"], w.project_id)
    owed = [  # Ann has signed the DPIA but still owes the ISA
        (w.dpia_id, "ian@isl.example"),
        (w.isa_id, "ann@cam.example"),
        (w.isa_id, "ian@isl.example"),
    ]
    assert first.sent == owed
    again = await w.parties.remind(w.people["ann"], w.project_id)
    assert again.sent == [] and again.not_due == owed
    async with w.sessions() as session:
        sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert [(m.recipient, m.dpia_id) for m in sent if m.subject.startswith("Please sign")] == [
            ("ian@isl.example", w.dpia_id),
            ("ann@cam.example", w.isa_id),
            ("ian@isl.example", w.isa_id),
        ]
        assert b"/sign-off" in sent[-1].message
        await session.execute(
            update(SignOffReminder).values(sent_at=datetime.now(UTC) - timedelta(days=1, minutes=1))
        )
        await session.commit()
    status = await w.parties.status(w.people["ann"], w.project_id)
    assert status.document(DocumentKind.DPIA).last_reminded is not None  # type: ignore[union-attr]
    later = await w.parties.remind(w.people["ann"], w.project_id)
    assert later.sent == owed


async def test_adopting_an_endorsed_agreement_keeps_its_origin_and_flags_changes(w: World) -> None:
    hal = w.people["hal"]
    await edit(w, w.isa_id, "Share the outreach list weekly")
    with pytest.raises(InvalidInput, match="no valid endorsement"):
        await w.adoption.adopt(hal, w.project_id, w.orgs["HAC"])
    await w.parties.invite_reviewing_body(w.people["ann"], w.project_id, w.orgs["IGFL"])
    endorsement = await w.parties.endorse(w.people["rita"], w.isa_id, decision="endorse")
    with pytest.raises(InvalidInput, match="party to this agreement already"):
        await w.adoption.adopt(w.people["ann"], w.project_id, w.orgs["CAM"])
    with pytest.raises(InvalidInput, match="one of your organisations"):
        await w.adoption.adopt(hal, w.project_id, w.orgs["CAM"])

    new_id = await w.adoption.adopt(hal, w.project_id, w.orgs["HAC"])
    view = await w.projects.view(hal, new_id)
    assert view.adopted_from == w.project_id and view.lead_organisation == "Hackney"
    assert [(p.name, str(p.role)) for p in view.parties] == [
        ("Hackney", "controller"),
        ("Camden", "controller"),
        ("Islington", "joint_controller"),
        ("IGfL", "reviewing_body"),
    ]
    origin = json.loads(view.endorsement_origin or "{}")
    assert (origin["signoff"], origin["reviewing_body"], origin["isa"]) == (
        endorsement,
        "IGfL",
        w.isa_id,
    )
    assert len(origin["content_hash"]) == 64 and origin["seq"] >= 2
    new_isa = view.current(DocumentKind.ISA)
    new_dpia = view.current(DocumentKind.DPIA)
    assert new_isa is not None and new_dpia is not None
    assert await w.adoption.changes_from_endorsed(hal, new_isa.id) == []
    await edit(w, new_isa.id, "and with the police")
    [change] = await w.adoption.changes_from_endorsed(hal, new_isa.id)
    assert change.path == "need.aims" and "police" in change.after
    assert "police" not in change.before and "weekly" in change.before
    # The original is untouched, and nobody of the original joined the copy.
    assert await w.adoption.changes_from_endorsed(w.people["ann"], w.isa_id) is None
    with pytest.raises(DocumentNotFound):
        await w.projects.view(w.people["ann"], new_id)
    async with w.sessions() as session:
        copies = await session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.code == "HAC")
        )
    assert copies == 1
