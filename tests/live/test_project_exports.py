"""A project's documents and the project itself leave the running app (issue 16): the ISA's
PDF and Word files downloaded over HTTP carry a signature block per party filled from a
party's signature (and "Not yet signed" for the rest), its PDF passes the DPIA's PDF/UA-1
checks, a later change shows the signature stale; the project's JSON downloads for those
taking part only and imports as a new project through the import API.

The ISA is made from ``uk-isa`` where that template ships, else from the idea's template
(signature blocks print for any ISA whatever its template); the party's signature is the
sign-off row the party sign-off work records (tests/support/review.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pycrdt import Doc, XmlFragment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.projects import DocumentKind
from server.domain.templates import UnknownTemplate, append_paragraphs, load_template
from server.services.accounts import AccountService, password_hasher
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.projects import ProjectService
from server.storage.database import create_engine
from server.storage.models import Organisation, ProjectParty
from server.storage.updates import SqlUpdateStore
from tests.support.exports import artifact, pdf_pages, word_text
from tests.support.live import LiveServer
from tests.support.pdfua import assert_pdf_ua, render_pages
from tests.support.review import append_change, party_signature
from tests.support.site import Site, seeded_server, signed_in

pytestmark = pytest.mark.asyncio
TRUST = "North London NHS Foundation Trust"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


@dataclass
class Isa:
    project_id: str
    isa_id: str
    store: SqlUpdateStore
    richtext: str  # a rich text field of its template, to change


def _isa_template() -> str:
    try:
        return load_template(DocumentKind.ISA.template_id).id
    except UnknownTemplate:
        return DocumentKind.IDEA.template_id


@pytest_asyncio.fixture
async def isa(server: tuple[LiveServer, Site], sqlite_url: str) -> AsyncIterator[Isa]:
    """The seeded DPIA's project with the trust as a joint controller, its ISA, and the
    trust's DPO's signature on it."""
    _, site = server
    engine = create_engine(sqlite_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    store = SqlUpdateStore(engine)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    dpias = DpiaService(sessions, store)
    owner = await accounts.user_by_email(site.emails["owner"])
    dpo = await accounts.user_by_email(site.emails["dpo"])
    assert owner is not None and dpo is not None
    project_id = await ProjectService(sessions, dpias).project_of(site.dpia_id)
    assert project_id is not None
    async with sessions.begin() as session:
        trust = await session.scalar(select(Organisation.id).where(Organisation.code == "NLFT"))
        assert trust is not None
        session.add(
            ProjectParty(
                project_id=project_id, organisation_id=trust, name=TRUST, role="joint_controller"
            )
        )
    template = load_template(_isa_template())
    isa_id = await dpias.create(
        owner,
        "Shared DPIA",
        owner.organisation_ids[0],
        template_id=template.id,
        project_id=project_id,
        kind=DocumentKind.ISA,
    )
    history = HistoryService(sessions, store, AuditTrail(sessions))
    await party_signature(
        sessions, history, isa_id, dpo, organisation=(trust, TRUST), capacity="dpo"
    )
    richtext = next(
        f"{s['id']}.{f['id']}"
        for s in template.sections
        for f in s["fields"]
        if f["kind"] == "richtext"
    )
    try:
        yield Isa(project_id, isa_id, store, richtext)
    finally:
        await engine.dispose()


def _flat(text: str) -> str:
    return " ".join(text.split())


async def test_the_isa_pdf_and_word_carry_the_signature_blocks(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient, isa: Isa
) -> None:
    response = await owner.get(f"/dpias/{isa.isa_id}/export.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    data = response.content
    assert_pdf_ua(data, f"{isa.isa_id}: Shared DPIA", artifact("live-isa.pdf"))
    render_pages(data, "live-isa")
    text = _flat(" ".join(pdf_pages(data)))
    assert text.startswith("Information sharing agreement Shared DPIA")
    signatures = text.split("Signatures", 1)[1].split("Sign-offs", 1)[0]
    camden, trust = signatures.split(f"{TRUST} (Joint controller)")
    assert camden.strip().startswith("London Borough of Camden (Controller)")
    # Camden: nobody has signed; the trust: its DPO has, its SIRO not yet
    assert camden.count("Not yet signed") == 2 and "Dpo Person" not in camden
    assert "Data protection officer Signed by Dpo Person Capacity Data protection officer" in trust
    assert f"Organisation {TRUST}" in trust
    assert "Matches the current content Yes State Valid" in trust
    assert "Senior information risk owner Signed by Not yet signed" in trust
    assert f"Project {isa.project_id}: Shared DPIA" in text

    word = await owner.get(f"/dpias/{isa.isa_id}/export.docx")
    assert word.status_code == 200
    _, units = word_text(word.content)
    assert units.count("Not yet signed") == 3
    assert "Dpo Person" in units and f"{TRUST} (Joint controller)" in units

    def change(doc: Doc[Any]) -> None:
        fragment = doc.get(f"field:{isa.richtext}", type=XmlFragment)
        append_paragraphs(fragment, ["Changed after signing"])

    await append_change(isa.store, isa.isa_id, change, "user:1")
    later = _flat(" ".join(pdf_pages((await owner.get(f"/dpias/{isa.isa_id}/export.pdf")).content)))
    trust_later = later.split(f"{TRUST} (Joint controller)", 1)[1].split("Sign-offs", 1)[0]
    assert "Matches the current content No: changed since signed" in trust_later
    assert "State STALE: changed since signed" in trust_later
    assert "Changed after signing" in later


async def test_the_project_downloads_as_json_and_imports_as_a_new_project(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient, isa: Isa
) -> None:
    live, site = server
    page = await owner.get(f"/dpias/{site.dpia_id}/workflow")
    assert f'href="/projects/{isa.project_id}/export.json"' in page.text
    assert f'href="/dpias/{site.dpia_id}/export.csv"' in page.text  # a DPIA's action plan
    page = await owner.get(f"/dpias/{isa.isa_id}/workflow")  # the ISA's export links
    assert page.status_code == 200, page.text
    assert f'href="/dpias/{isa.isa_id}/export.pdf"' in page.text
    assert f'href="/dpias/{isa.isa_id}/export.docx"' in page.text
    assert f'href="/dpias/{isa.isa_id}/export.csv"' not in page.text  # it has no action plan
    assert (await owner.get(f"/dpias/{isa.isa_id}/export.csv")).status_code == 400
    response = await owner.get(f"/projects/{isa.project_id}/export.json")
    assert response.status_code == 200, response.text
    assert f'filename="{isa.project_id}.json"' in response.headers["content-disposition"]
    data = json.loads(response.content)
    assert [d["kind"] for d in data["documents"]] == ["dpia", "isa"]
    assert data["documents"][1]["signoffs"][0]["signer"] == "Dpo Person"
    assert data["documents"][1]["signoffs"][0]["capacity"] == "dpo"

    outsider = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["outsider"])
    try:
        hidden = await outsider.get(f"/projects/{isa.project_id}/export.json")
        assert hidden.status_code == 404
        assert isa.isa_id not in hidden.text
    finally:
        await outsider.aclose()

    organisations = await owner.get("/dpias/import")
    lead = organisations.text.split('<option value="', 1)[1].split('"', 1)[0]
    imported = await owner.post(
        f"/api/dpias/import?lead={lead}",
        content=response.content,
        headers={"x-csrftoken": owner.cookies["csrftoken"], "content-type": "application/json"},
    )
    assert imported.status_code == 201, imported.text
    made = imported.json()
    assert made["project"] != isa.project_id and len(made["documents"]) == 2
    again = json.loads((await owner.get(f"/projects/{made['project']}/export.json")).content)
    for before, after in zip(data["documents"], again["documents"], strict=True):
        assert (after["kind"], after["content"]) == (before["kind"], before["content"])
        assert after["signoffs"] == []
    parties = [(p["name"], p["role"]) for p in again["project"]["parties"]]
    assert (TRUST, "joint_controller") in parties

    refused = await owner.post(
        f"/api/dpias/import?lead={lead}",
        content=b'{"format": "opendpia.project", "version": 1, "project": 3}',
        headers={"x-csrftoken": owner.cookies["csrftoken"], "content-type": "application/json"},
    )
    assert refused.status_code == 400
    assert "project and documents are needed" in refused.text
