"""The demo a newcomer meets with `make run`: its organisations are parties to its DPIA."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.dpias import PartyRole
from server.services.accounts import AccountService
from server.services.demo import (
    DEMO_PASSWORD,
    JUST_IN_TIME,
    ORGANISATIONS,
    PEOPLE,
    SSO,
    seed_demo,
)
from server.services.dpias import DpiaService
from server.services.signin import SignInDirectory
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.live import ROOT
from tests.support.review import record_services

pytestmark = pytest.mark.asyncio


async def test_every_organisation_whose_staff_write_the_demo_is_a_party_to_it(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        store = SqlUpdateStore(engine)
        dpias = DpiaService(sessions, store)
        signoffs = record_services(sessions, store, dpias)[2]
        dpia_id = await seed_demo(sessions, store, signoffs)
        assert dpia_id is not None
        owner = await AccountService(sessions).user_by_email(PEOPLE[0].email)
        assert owner is not None
        parties = await dpias.parties(owner, dpia_id)
        names = dict(ORGANISATIONS)
        writers = {names[p.organisation] for p in PEOPLE if p.role.can_write}
        assert writers <= {party.name for party in parties}
        roles = {party.name: party.role for party in parties}
        assert roles["North London NHS Foundation Trust"] is PartyRole.JOINT_CONTROLLER
        assert await seed_demo(sessions, store, signoffs) is None  # once only
    finally:
        await engine.dispose()


async def test_the_demo_signs_islington_in_through_the_provider_make_run_starts(
    sqlite_url: str,
) -> None:
    await asyncio.to_thread(migrate, sqlite_url)
    engine = create_engine(sqlite_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        store = SqlUpdateStore(engine)
        signoffs = record_services(sessions, store, DpiaService(sessions, store))[2]
        await seed_demo(sessions, store, signoffs, "http://127.0.0.1:8090")
        provider = await SignInDirectory(sessions).for_email("anyone@islington.example")
    finally:
        await engine.dispose()
    assert provider is not None and provider.issuer == "http://127.0.0.1:8090"
    # The provider `make run` starts is registered with the same client, tenant and people.
    makefile = (ROOT / "Makefile").read_text()
    for value in (SSO["client_id"], SSO["client_secret"], SSO["tenant"]):
        assert value in makefile
    accounts = json.loads((ROOT / "tests" / "node" / "demo-accounts.json").read_text())
    people = [p for p in PEOPLE if p.provider_login] + [JUST_IN_TIME]
    assert {p.provider_login: p.email for p in people} == {
        login: a["email"] for login, a in accounts.items()
    }
    assert all(a["password"] == DEMO_PASSWORD for a in accounts.values())
    assert SSO["admin_group"] in accounts["kim"]["groups"]
