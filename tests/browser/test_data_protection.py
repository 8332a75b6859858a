"""In Chromium, an owner with the editor open erases an email-only partner from the
participants page and deletes the draft from the workflow page; each step asks first, the
open editor closes when the DPIA goes, and the dashboard says what was deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, password_hasher
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.browser.conftest import EDITOR_BUNDLE, _require, keep_screenshot, sign_in
from tests.support.live import LiveServer, make_settings, serving
from tests.support.protection import PARTNER_EMAIL, PARTNER_NAME, leave_traces
from tests.support.site import Site, prepare, seed_site

pytestmark = pytest.mark.asyncio


async def _seed(database_url: str) -> Site:
    site = await seed_site(database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    store = SqlUpdateStore(engine)
    owner = await accounts.user_by_email(site.emails["owner"])
    assert owner is not None
    await leave_traces(
        sessions, store, DpiaService(sessions, store), AuditTrail(sessions), owner, site.dpia_id
    )
    await engine.dispose()
    return site


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    site = asyncio.run(_seed(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site


async def test_an_owner_erases_a_partner_then_deletes_the_draft_in_the_browser(
    server: tuple[LiveServer, Site], browser: Any
) -> None:
    live, site = server
    base, dpia = f"http://127.0.0.1:{live.port}", site.dpia_id
    owner = await sign_in(browser, base, site.emails["owner"])
    editor = await sign_in(browser, base, site.emails["editor"])
    await editor.goto(f"{base}/dpias/{dpia}")
    await editor.wait_for_selector('#connection-state[data-state="connected"]')

    await owner.goto(f"{base}/dpias/{dpia}/participants")
    await owner.get_by_role("link", name=f"Erase {PARTNER_NAME}").click()
    await owner.wait_for_selector("text=takes part in 1 DPIA")
    await owner.get_by_role("button", name=f"Yes, erase {PARTNER_EMAIL}").click()
    await owner.wait_for_selector("text=Erased. They are now")
    await keep_screenshot(owner, "data-protection-erased.png", full_page=True)
    await owner.goto(f"{base}/dpias/{dpia}/participants")
    assert PARTNER_NAME not in await owner.content()
    assert "Former participant" in await owner.content()

    await owner.goto(f"{base}/dpias/{dpia}/workflow")
    await owner.get_by_role("link", name="Delete this DPIA").click()
    await owner.wait_for_selector("text=This cannot be undone")
    await owner.get_by_role("button", name=f"Yes, delete {dpia}").click()
    await owner.wait_for_url(f"{base}/dpias?deleted={dpia}")
    await owner.wait_for_selector(f"text={dpia} was deleted")
    await editor.wait_for_selector(
        '#connection-state:not([data-state="connected"])', timeout=15_000
    )
    await editor.goto(f"{base}/dpias/{dpia}")
    assert "Not found" in await editor.title() or "no such DPIA" in await editor.content()
