"""A library of documents to search: two organisations, documents each person takes part in
or not, a hostile one, and documents in several states, templates and review dates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Doc, Map, XmlFragment
from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.projects import DocumentKind
from server.domain.search import PAGE_SIZE
from server.domain.templates import append_paragraphs, load_template, seed_update
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine
from server.storage.models import Dpia
from server.storage.updates import SqlUpdateStore

PASSWORD = "correct horse battery"
HOSTILE = '<script>alert("gotcha")</script><img src=x onerror=alert(1)> quokka sighting'


@dataclass
class Library:
    ann: str  # Camden: takes part in visible, risky, hostile, idea
    oscar: str  # the trust: takes part in secret alone
    visible: str
    risky: str
    hostile: str
    idea: str
    secret: list[str]  # more than a page of them, each a better match than Ann's
    cam: int
    nlft: int


def content(
    template_id: str,
    paragraphs: dict[str, list[str]],
    values: dict[str, Any] | None = None,
    risks: list[dict[str, Any]] | None = None,
) -> bytes:
    """A first update with these answers (as the server seeds a document)."""
    doc: Doc[Any] = Doc()
    doc.apply_update(seed_update(load_template(template_id)))
    with doc.transaction():
        for path, lines in paragraphs.items():
            append_paragraphs(doc.get(f"field:{path}", type=XmlFragment), lines)
        for key, value in (values or {}).items():
            doc.get("values", type=Map)[key] = value
        if risks:
            table = doc.get("table:risks.register", type=Array)
            for row in risks:
                table.append(Map(row))
    return doc.get_update()


async def seed_library(database_url: str) -> Library:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    cam = await accounts.create_organisation("CAM", "London Borough of Camden")
    nlft = await accounts.create_organisation("NLFT", "North London NHS Foundation Trust")
    ann_id = await accounts.create_user("ann@camden.example", "Ann Smith", PASSWORD, "CAM")
    oscar_id = await accounts.create_user("oscar@nlft.example", "Oscar Other", PASSWORD, "NLFT")
    ann = CurrentUser(ann_id, "ann@camden.example", "Ann Smith", (cam,))
    oscar = CurrentUser(oscar_id, "oscar@nlft.example", "Oscar Other", (nlft,))
    visible = await dpias.create(
        ann,
        "Hospital discharge to home care",
        cam,
        initial_state=content(
            "uk-dpia",
            {"need.aims": ["We share discharge summaries with the borough to plan home care."]},
            {"review.next_review": "2020-01-01"},
        ),
    )
    risky = await dpias.create(
        ann,
        "Library loans",
        cam,
        initial_state=content(
            "uk-dpia",
            {"need.aims": ["Loans of books to residents."]},
            {"review.next_review": "2999-01-01"},
            risks=[{"id": "r1", "ref": "R1", "title": "Borrowing histories reidentify a reader"}],
        ),
    )
    hostile = await dpias.create(
        ann,
        'Wildlife <b>survey</b> & "counts"',
        cam,
        initial_state=content("uk-dpia", {"need.aims": [HOSTILE]}),
    )
    idea = await dpias.create(
        ann,
        "An idea about discharge",
        cam,
        template_id=DocumentKind.IDEA.template_id,
        kind=DocumentKind.IDEA,
        initial_state=content(
            DocumentKind.IDEA.template_id, {"outcome.outcome": ["Fewer delayed discharges."]}
        ),
    )
    # The best match of all for "discharge summaries", in a DPIA Ann takes no part in.
    secret = [
        await dpias.create(
            oscar,
            f"Discharge summaries discharge summaries {number}",
            nlft,
            initial_state=content(
                "uk-dpia", {"need.aims": ["Discharge summaries, discharge summaries. " * 20]}
            ),
        )
        for number in range(PAGE_SIZE + 3)
    ]
    async with sessions.begin() as session:
        await session.execute(update(Dpia).where(Dpia.id == risky).values(status="in_force"))
    await engine.dispose()
    return Library(ann.email, oscar.email, visible, risky, hostile, idea, secret, cam, nlft)
