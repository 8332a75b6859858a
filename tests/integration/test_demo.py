"""The demo a newcomer meets with `make run`: its organisations are parties to its DPIA, and
its project runs from the idea to the ISA with one party signed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.content import plain_text
from server.domain.dpias import PartyRole
from server.domain.parties import SignatureState
from server.domain.projects import DocumentKind
from server.domain.workflow import IgStep
from server.services.accounts import AccountService, password_hasher
from server.services.audit import AuditTrail
from server.services.demo import (
    DEMO_PASSWORD,
    JUST_IN_TIME,
    ORGANISATIONS,
    PEOPLE,
    SSO,
    seed_demo,
)
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.projects import ProjectService
from server.services.signin import SignInDirectory
from server.services.signoffs import SignOffService
from server.services.sources import SourceService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from server.usecases.demo import PROJECT_PEOPLE, REVIEWING_BODY, seed_demo_project
from tests.support.live import ROOT
from tests.support.parties import party_service
from tests.support.review import record_services

pytestmark = pytest.mark.asyncio


@dataclass
class Seeding:
    sessions: async_sessionmaker[AsyncSession]
    store: SqlUpdateStore
    dpias: DpiaService
    audit: AuditTrail
    history: HistoryService
    signoffs: SignOffService


@asynccontextmanager
async def seeding(database_url: str) -> AsyncIterator[Seeding]:
    """A migrated database and the services the demo is seeded with, as `opendpia demo`'s."""
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        store = SqlUpdateStore(engine)
        dpias = DpiaService(sessions, store)
        audit, history, signoffs, _, _ = record_services(sessions, store, dpias)
        yield Seeding(sessions, store, dpias, audit, history, signoffs)
    finally:
        await engine.dispose()


async def test_every_organisation_whose_staff_write_the_demo_is_a_party_to_it(
    database_url: str,
) -> None:
    async with seeding(database_url) as seeded:
        sessions, store, dpias, signoffs = (
            seeded.sessions,
            seeded.store,
            seeded.dpias,
            seeded.signoffs,
        )
        dpia_id = await seed_demo(sessions, store, signoffs)
        assert dpia_id is not None
        accounts = AccountService(sessions, password_hasher("fast-for-tests"))
        owner = await accounts.user_by_email(PEOPLE[0].email)
        assert owner is not None
        parties = await dpias.parties(owner, dpia_id)
        names = dict(ORGANISATIONS)
        writers = {names[p.organisation] for p in PEOPLE if p.role.can_write}
        assert writers <= {party.name for party in parties}
        roles = {party.name: party.role for party in parties}
        assert roles["North London NHS Foundation Trust"] is PartyRole.JOINT_CONTROLLER
        assert await seed_demo(sessions, store, signoffs) is None  # once only


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


async def test_the_demo_project_runs_steps_1_to_5_with_one_party_signed(
    database_url: str,
) -> None:
    async with seeding(database_url) as w:
        sessions, store, dpias, signoffs = w.sessions, w.store, w.dpias, w.signoffs
        audit, history = w.audit, w.history
        await seed_demo(sessions, store, signoffs)
        seeded = await seed_demo_project(sessions, store, signoffs, password=DEMO_PASSWORD)
        assert seeded is not None
        accounts = AccountService(sessions, password_hasher("fast-for-tests"))
        lead = await accounts.user_by_email("ig.lead@camden.example")
        grace = await accounts.user_by_email("dpo@camden.example")
        assert lead is not None and grace is not None
        projects = ProjectService(sessions, dpias)
        view = await projects.view(lead, seeded.project_id)
        assert view.step is IgStep.COMPLETE_ISA
        assert {p.name: str(p.role) for p in view.parties} == {
            "London Borough of Camden": "controller",
            "North London NHS Foundation Trust": "joint_controller",
            REVIEWING_BODY[1]: "reviewing_body",
        }
        # Steps 1-3 are written, and the DPIA and the ISA are drafted from them.
        idea = view.current(DocumentKind.IDEA)
        assert idea is not None
        assert "Fewer people wait in hospital" in plain_text(
            (await history.current(idea.id)).content["outcome"]["outcome"]
        )
        dpia = (await history.current(seeded.dpia_id)).content
        assert "Fewer people wait in hospital" in plain_text(dpia["need"]["aims"])
        assert len(dpia["processing"]["operations"]) == 2  # one per feasibility dataset
        isa = (await history.current(seeded.isa_id)).content
        assert "Rows for each borough's residents only" in plain_text(isa["security"]["measures"])
        sources = SourceService(sessions, dpias, history, audit)
        links = (await sources.sources(lead, seeded.isa_id)).links
        assert links and not any(link.changed for link in links)
        # The trust's DPO has signed the DPIA; Camden's DPO is the one it waits for.
        parties = party_service(sessions, store, dpias, projects, history, signoffs, audit)
        status = await parties.status(lead, seeded.project_id)
        on_dpia = status.document(DocumentKind.DPIA)
        assert on_dpia is not None
        states = {(r.party.name, r.capacity.value): r.state for r in on_dpia.required}
        assert states == {
            ("London Borough of Camden", "dpo"): SignatureState.OUTSTANDING,
            ("North London NHS Foundation Trust", "dpo"): SignatureState.SIGNED,
        }
        waiting = await parties.outstanding_for(grace)
        # (Camden's DPO also owes the first demo DPIA, led by Camden, its signature.)
        assert {(seeded.dpia_id, "dpo"), (seeded.isa_id, "dpo")} <= {
            (w.document_id, w.capacity.value) for w in waiting
        }
        await parties.sign_for_party(grace, seeded.dpia_id, decision="approve")
        on_dpia = (await parties.status(lead, seeded.project_id)).document(DocumentKind.DPIA)
        assert on_dpia is not None and on_dpia.approved
        # The steering group reviews: its member takes part in the ISA and may endorse it.
        reviewer = await accounts.user_by_email(PROJECT_PEOPLE[0].email)
        assert reviewer is not None
        assert (await parties.status(reviewer, seeded.project_id)).reviewing_party is not None
        # Once only.
        assert await seed_demo_project(sessions, store, signoffs) is None
