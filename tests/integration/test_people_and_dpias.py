"""Accounts, sessions, DPIAs and participants on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pycrdt import Doc, Map, XmlFragment
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from server.domain.access import Role
from server.domain.errors import (
    AccessDenied,
    Conflict,
    DocumentNotFound,
    InvalidInput,
    TooManyAttempts,
)
from server.domain.templates import append_paragraphs
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore

pytestmark = pytest.mark.asyncio
PASSWORD = "correct horse battery"
FAST = password_hasher("fast-for-tests")


@dataclass
class World:
    engine: AsyncEngine
    accounts: AccountService
    dpias: DpiaService
    store: SqlUpdateStore
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
    ann_id = await accounts.create_user("Ann@Camden.example", "Ann Smith", PASSWORD, "CAM")
    bob_id = await accounts.create_user("bob@nlft.example", "Bob Jones", PASSWORD, "NLFT")
    ann = CurrentUser(ann_id, "ann@camden.example", "Ann Smith", (cam,))
    bob = CurrentUser(bob_id, "bob@nlft.example", "Bob Jones", (nhs,))
    try:
        yield World(
            engine,
            accounts,
            DpiaService(sessions, SqlUpdateStore(engine)),
            SqlUpdateStore(engine),
            ann,
            bob,
            cam,
            nhs,
        )
    finally:
        await engine.dispose()


async def _document(store: SqlUpdateStore, dpia_id: str) -> Doc[Any]:
    stored = await store.load(dpia_id)
    assert stored is not None
    return stored.to_doc()


async def test_sign_in_gives_a_session_that_names_the_user_until_sign_out(world: World) -> None:
    secret = await world.accounts.sign_in("ANN@camden.example ", PASSWORD, "10.0.0.1")
    user = await world.accounts.user_for_session(secret)
    assert user is not None and (user.email, user.organisation_ids) == (
        "ann@camden.example",
        (world.cam,),
    )
    await world.accounts.sign_out(secret)
    assert await world.accounts.user_for_session(secret) is None
    assert await world.accounts.user_for_session("forged-" + secret) is None


async def test_wrong_password_and_unknown_email_get_the_same_answer(world: World) -> None:
    with pytest.raises(AccessDenied) as wrong:
        await world.accounts.sign_in("ann@camden.example", "not the password", "10.0.0.1")
    with pytest.raises(AccessDenied) as unknown:
        await world.accounts.sign_in("nobody@camden.example", PASSWORD, "10.0.0.1")
    assert str(wrong.value) == str(unknown.value)


async def test_sign_in_is_rate_limited_per_client_and_email_even_for_the_right_password(
    world: World,
) -> None:
    for _ in range(5):
        with pytest.raises(AccessDenied):
            await world.accounts.sign_in("ann@camden.example", "wrong password!", "10.0.0.2")
    with pytest.raises(TooManyAttempts) as limited:
        await world.accounts.sign_in("ann@camden.example", PASSWORD, "10.0.0.2")
    assert limited.value.retry_after > 0
    # Another client is not locked out of the account: the guesser cannot lock Ann out.
    assert await world.accounts.sign_in("ann@camden.example", PASSWORD, "10.0.0.3")
    with pytest.raises(TooManyAttempts):
        await world.accounts.sign_in("ann@camden.example", PASSWORD, "10.0.0.2")


async def test_duplicate_users_and_organisations_are_conflicts(world: World) -> None:
    with pytest.raises(Conflict):
        await world.accounts.create_user("ann@CAMDEN.example", "Ann 2", PASSWORD, "CAM")
    with pytest.raises(Conflict):
        await world.accounts.create_organisation("cam", "Another Camden")
    with pytest.raises(InvalidInput, match="at least 12"):
        await world.accounts.create_user("c@camden.example", "C", "short", "CAM")


async def test_a_new_dpia_is_seeded_once_as_the_first_logged_update(world: World) -> None:
    first = await world.dpias.create(world.ann, "Rough sleeping data sharing", world.cam)
    second = await world.dpias.create(world.ann, "Adult social care records", world.cam)
    assert first.startswith("DPIA-CAM-") and first.endswith("-1")
    assert second.endswith("-2")
    log = await world.store.updates(first)
    assert [(r.seq, r.origin, r.actor) for r in log] == [
        (1, "template:uk-dpia", f"user:{world.ann.id}")
    ]
    doc = await _document(world.store, first)
    assert doc.get("meta", type=Map).to_py() == {"template": "uk-dpia", "template_version": 1}
    access = await world.dpias.access(world.ann, first)
    assert access.role is Role.OWNER


async def test_a_dpia_cannot_be_led_by_an_organisation_you_are_not_in(world: World) -> None:
    with pytest.raises(InvalidInput, match="one of your organisations"):
        await world.dpias.create(world.ann, "Not mine to lead", world.nhs)


async def test_non_participants_cannot_learn_a_dpia_exists(world: World) -> None:
    dpia_id = await world.dpias.create(world.ann, "Confidential sharing", world.cam)
    for attempt in (
        world.dpias.access(world.bob, dpia_id),
        world.dpias.participants(world.bob, dpia_id),
        world.dpias.invite(world.bob, dpia_id, "x@y.example", "editor"),
    ):
        with pytest.raises(DocumentNotFound):
            await attempt
    assert await world.dpias.list_for(world.bob) == []


async def test_invitations_make_account_or_email_only_participants(world: World) -> None:
    dpia_id = await world.dpias.create(world.ann, "Joint working", world.cam)
    await world.dpias.invite(world.ann, dpia_id, "BOB@nlft.example", "editor")
    await world.dpias.invite(world.ann, dpia_id, "partner@charity.example", "commenter", "Jo")
    people = {p.email: p for p in await world.dpias.participants(world.ann, dpia_id)}
    assert people["bob@nlft.example"].has_account and people["bob@nlft.example"].role is Role.EDITOR
    assert people["bob@nlft.example"].organisation == "North London NHS Foundation Trust"
    jo = people["partner@charity.example"]
    assert (jo.has_account, jo.name, jo.role) == (False, "Jo", Role.COMMENTER)
    assert (await world.dpias.access(world.bob, dpia_id)).role is Role.EDITOR
    assert [d.id for d in await world.dpias.list_for(world.bob)] == [dpia_id]
    with pytest.raises(Conflict):
        await world.dpias.invite(world.ann, dpia_id, "bob@nlft.example", "viewer")


async def test_only_owners_manage_and_the_last_owner_stays(world: World) -> None:
    dpia_id = await world.dpias.create(world.ann, "Joint working", world.cam)
    await world.dpias.invite(world.ann, dpia_id, "bob@nlft.example", "editor")
    people = {p.email: p for p in await world.dpias.participants(world.ann, dpia_id)}
    with pytest.raises(AccessDenied):
        await world.dpias.invite(world.bob, dpia_id, "eve@evil.example", "owner")
    with pytest.raises(AccessDenied):
        await world.dpias.change_role(world.bob, dpia_id, people["bob@nlft.example"].id, "owner")
    with pytest.raises(Conflict, match="at least one owner"):
        await world.dpias.change_role(world.ann, dpia_id, people["ann@camden.example"].id, "viewer")
    with pytest.raises(Conflict):
        await world.dpias.remove(world.ann, dpia_id, people["ann@camden.example"].id)
    with pytest.raises(InvalidInput, match="no role"):
        await world.dpias.invite(world.ann, dpia_id, "c@camden.example", "superuser")
    await world.dpias.change_role(world.ann, dpia_id, people["bob@nlft.example"].id, "viewer")
    assert (await world.dpias.access(world.bob, dpia_id)).role is Role.VIEWER
    await world.dpias.remove(world.ann, dpia_id, people["bob@nlft.example"].id)
    with pytest.raises(DocumentNotFound):
        await world.dpias.access(world.bob, dpia_id)


async def test_reuse_copies_content_not_discussion_with_fresh_history(world: World) -> None:
    source = await world.dpias.create(world.ann, "Original", world.cam)
    doc = await _document(world.store, source)
    before = doc.get_state()
    with doc.transaction():
        append_paragraphs(doc.get("field:need.aims", type=XmlFragment), ["Fewer rough sleepers."])
        doc.get("values", type=Map)["screening.outcome"] = "required"
        doc.get("comments", type=Map)["c-1"] = Map({"text": "private discussion"})
    from datetime import UTC, datetime

    from server.domain.documents import UpdateRecord

    await world.store.append(
        [UpdateRecord(source, 2, doc.get_update(before), "t", "api", "t", datetime.now(UTC))]
    )
    clone = await world.dpias.clone(world.ann, source, "Reused", world.cam)
    copied = await _document(world.store, clone)
    assert "Fewer rough sleepers." in str(copied.get("field:need.aims", type=XmlFragment))
    assert copied.get("values", type=Map)["screening.outcome"] == "required"
    assert copied.get("comments", type=Map).to_py() == {}
    assert [r.seq for r in await world.store.updates(clone)] == [1]
    summary = {d.id: d for d in await world.dpias.list_for(world.ann)}[clone]
    assert summary.origin_id == source
    with pytest.raises(DocumentNotFound):
        await world.dpias.clone(world.bob, source, "Stolen", world.nhs)


async def test_dashboard_search_and_filters(world: World) -> None:
    a = await world.dpias.create(world.ann, "Rough sleeping data sharing", world.cam)
    await world.dpias.create(world.ann, "Adult social care", world.cam)
    assert [d.id for d in await world.dpias.list_for(world.ann, search="ROUGH")] == [a]
    assert [d.id for d in await world.dpias.list_for(world.ann, search=a)] == [a]
    assert await world.dpias.list_for(world.ann, status="approved") == []
    assert len(await world.dpias.list_for(world.ann, organisation_id=world.cam)) == 2
    assert await world.dpias.list_for(world.ann, organisation_id=world.nhs) == []
    summary = (await world.dpias.list_for(world.ann, search="adult"))[0]
    assert (summary.sections_total, summary.sections_reviewed) == (11, 0)
    assert summary.last_activity is not None


async def test_owners_record_the_parties_and_their_roles(world: World) -> None:
    dpia_id = await world.dpias.create(world.ann, "Joint working", world.cam)
    await world.dpias.invite(world.ann, dpia_id, "bob@nlft.example", "editor")
    (lead,) = await world.dpias.parties(world.ann, dpia_id)
    assert (lead.name, lead.role.value) == ("London Borough of Camden", "controller")
    await world.dpias.add_party(world.ann, dpia_id, "joint_controller", organisation_id=world.nhs)
    await world.dpias.add_party(world.ann, dpia_id, "processor", name="Streetlink Ltd")
    parties = {p.name: p.role.value for p in await world.dpias.parties(world.bob, dpia_id)}
    assert parties == {
        "London Borough of Camden": "controller",
        "North London NHS Foundation Trust": "joint_controller",
        "Streetlink Ltd": "processor",
    }
    with pytest.raises(AccessDenied):
        await world.dpias.add_party(world.bob, dpia_id, "recipient", name="Bob's friends")
    with pytest.raises(InvalidInput, match="no party role"):
        await world.dpias.add_party(world.ann, dpia_id, "owner", name="X Ltd")
    with pytest.raises(Conflict):
        await world.dpias.add_party(world.ann, dpia_id, "recipient", name="Streetlink Ltd")
    with pytest.raises(Conflict, match="lead organisation"):
        await world.dpias.remove_party(world.ann, dpia_id, lead.id)
    streetlink = next(
        p for p in await world.dpias.parties(world.ann, dpia_id) if p.name == "Streetlink Ltd"
    )
    await world.dpias.remove_party(world.ann, dpia_id, streetlink.id)
    assert len(await world.dpias.parties(world.ann, dpia_id)) == 2


async def test_a_reference_taken_by_a_tooling_document_is_skipped(world: World) -> None:
    from datetime import UTC, datetime

    year = datetime.now(UTC).year
    await world.store.create_document(f"DPIA-CAM-{year}-1", "token:script")
    dpia_id = await world.dpias.create(world.ann, "After a tooling document", world.cam)
    assert dpia_id == f"DPIA-CAM-{year}-2"
