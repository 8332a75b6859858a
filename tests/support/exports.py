"""The demo DPIA with the services that export it, and its exports read back as text.

Shared by the tests of what the record says (tests/integration/test_record_text.py) and of
how the PDF is built (tests/integration/test_pdf_record.py).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.demo import seed_demo
from server.services.dpias import DpiaService
from server.services.exports import ExportService
from server.services.signoffs import SignOffService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.review import record_services

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


def artifact(name: str) -> Path:
    """Where a test keeps a file for a person to look at (as the browser tests do)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@dataclass
class Demo:
    exports: ExportService
    signoffs: SignOffService
    dpias: DpiaService
    store: SqlUpdateStore
    owner: CurrentUser
    dpia_id: str


@asynccontextmanager
async def demo_world(database_url: str) -> AsyncIterator[Demo]:
    """The demo as `opendpia demo` seeds it (its DPO's sign-off included), read as its owner."""
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    store = SqlUpdateStore(engine)
    try:
        dpias = DpiaService(sessions, store)
        _, _, signoffs, _, exports = record_services(sessions, store, dpias)
        dpia_id = await seed_demo(sessions, store, signoffs)
        assert dpia_id is not None
        accounts = AccountService(sessions, password_hasher("fast-for-tests"))
        owner = await accounts.user_by_email("ig.lead@camden.example")
        assert owner is not None
        yield Demo(exports, signoffs, dpias, store, owner, dpia_id)
    finally:
        await engine.dispose()


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page, as a PDF reader extracts it (lines as laid out)."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    return [
        page.get_textpage().get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        for page in pdf
    ]


def pdf_text(data: bytes) -> tuple[str, list[str]]:
    """The whole text, and no whole units: a PDF's lines are wrapped, not whole values."""
    return "\n".join(pdf_pages(data)), []


def word_text(data: bytes) -> tuple[str, list[str]]:
    """The whole text, and its whole units: every paragraph, every table cell, the title."""
    import docx

    document = docx.Document(io.BytesIO(data))
    units = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            units.extend(cell.text for cell in row.cells)
    units.append(document.core_properties.title or "")
    return "\n".join(units), units
