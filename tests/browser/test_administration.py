"""Administration in a real browser, by keyboard-usable forms, with axe on every page: a
deployment administrator adds an organisation and invites its administrator, who chooses a
password through the emailed link, invites a person, makes them an administrator and a
member again, suspends them (their open editor closes) and reinstates them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.administration import AdminChannel, Standing
from server.services.accounts import AccountService, password_hasher
from server.services.admin_audit import AdminAuditTrail
from server.services.admin_records import Actor
from server.services.administration import Administration
from server.services.dpias import DpiaService
from server.services.passwords import PasswordResets
from server.storage.database import create_engine
from server.storage.models import OutboxMessage
from server.storage.updates import SqlUpdateStore
from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.browser.conftest import EDITOR_BUNDLE, _require, keep_screenshot, sign_in
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, Site, prepare, seed_site

pytestmark = pytest.mark.asyncio
DEPLOYMENT_PAGES = [
    ("organisations", "/admin/organisations"),
    ("organisation-edit", "/admin/organisations/WCC"),
]
ORGANISATION_PAGES = [
    ("people", "/admin/organisations/WCC/people"),
    ("dpias", "/admin/organisations/WCC/dpias"),
    ("audit", "/admin/organisations/WCC/audit"),
]
CHOSEN = "a long passphrase of my own"
ROOT = Actor("cli:test", AdminChannel.CLI, Standing(True, frozenset()), "test")


@pytest.fixture
def admin_site(sqlite_url: str) -> Iterator[tuple[LiveServer, Site, str]]:
    """The site of the other browser tests, with its DPIA owner a deployment administrator."""
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    site = asyncio.run(seed_site(sqlite_url))
    asyncio.run(_grant(sqlite_url, site.emails["owner"]))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site, sqlite_url


async def _grant(database_url: str, email: str) -> None:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    passwords = PasswordResets(sessions, base_url="http://x.test", mail_from="a@b.example")
    await Administration(sessions, passwords, AdminAuditTrail(sessions)).set_deployment_admin(
        ROOT, email, True
    )
    await engine.dispose()


async def _link_for(database_url: str, email: str) -> str:
    """The path of the set-your-password link mailed to ``email`` (read from the outbox)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            mail = (
                await connection.execute(
                    select(OutboxMessage.message).where(OutboxMessage.recipient == email)
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    message = message_from_bytes(mail, policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    found = re.search(r"(/reset-password/[A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


async def _choose_password(browser: Any, base: str, database_url: str, email: str) -> Any:
    """A new browser context for ``email``: the emailed link, a password, signing in."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(base + await _link_for(database_url, email))
    await page.get_by_label("New password (at least 12 characters)").fill(CHOSEN)
    await page.get_by_label("The same password again").fill(CHOSEN)
    await page.get_by_role("button", name="Set the password").click()
    await page.get_by_role("heading", name="Your password is changed").wait_for()
    await _sign_in_as(page, base, email)
    return page


async def _confirm(page: Any, button: str, question: str) -> None:
    await page.get_by_role("button", name=button).click()
    await page.get_by_role("heading", name=question).wait_for()
    await page.get_by_role("button", name=re.compile(r"^Yes, ")).click()


async def test_organisations_and_people_are_administered_in_the_browser(
    admin_site: tuple[LiveServer, Site, str], browser: Any
) -> None:
    live, site, database_url = admin_site
    base = f"http://127.0.0.1:{live.port}"
    found: dict[str, list[str]] = {}
    root = await sign_in(browser, base, site.emails["owner"], bypass_csp=True)

    # The deployment administrator adds Westminster and invites its administrator.
    await root.get_by_role("link", name="Administration").click()
    await root.wait_for_url(f"{base}/admin/organisations")
    await root.get_by_label("Name", exact=True).fill("Westminster City Council")
    await root.get_by_label("Code", exact=True).fill("WCC")
    await root.get_by_role("button", name="Add organisation").click()
    await root.wait_for_url(f"{base}/admin/organisations/WCC/people")
    await root.get_by_label("Full name").fill("Wendy Ward")
    await root.get_by_label("Email").fill("wendy@westminster.example")
    await root.get_by_label("Role").select_option("admin")
    await root.get_by_role("button", name="Invite").click()
    await root.get_by_text("Invited.").wait_for()

    # Wendy chooses her password and invites Walt, who chooses his.
    wendy = await _choose_password(browser, base, database_url, "wendy@westminster.example")
    await wendy.get_by_role("link", name="Administration").click()
    await wendy.wait_for_url(f"{base}/admin/organisations/WCC/people")
    await wendy.get_by_label("Full name").fill("Walt Wood")
    await wendy.get_by_label("Email").fill("walt@westminster.example")
    await wendy.get_by_role("button", name="Invite").click()
    await wendy.get_by_text("Invited.").wait_for()
    walt = await _choose_password(browser, base, database_url, "walt@westminster.example")

    # Walt takes part in a DPIA and has its editor open.
    await _invite_to_dpia(database_url, site, "walt@westminster.example")
    await walt.goto(f"{base}/dpias/{site.dpia_id}")
    await walt.wait_for_selector('#connection-state[data-state="connected"]')

    # Wendy makes Walt an administrator and a member again, each after confirming.
    await wendy.get_by_role("link", name="Walt Wood").click()
    person_page = wendy.url
    await wendy.get_by_label("New role").select_option("admin")
    await _confirm(wendy, "Change role", "Change Walt Wood's role to administrator?")
    await wendy.locator("#person-role", has_text="Administrator").wait_for()
    await wendy.get_by_label("New role").select_option("member")
    await _confirm(wendy, "Change role", "Change Walt Wood's role to member?")
    await wendy.locator("#person-role", has_text="Member").wait_for()

    # Suspending Walt closes his open editor; reinstating lets him sign in again.
    await wendy.get_by_role("button", name="Suspend Walt Wood").click()
    await wendy.get_by_role("heading", name="Suspend Walt Wood?").wait_for()
    await wendy.get_by_role("button", name="Yes, suspend").click()
    await wendy.locator("#person-state", has_text="Suspended").wait_for()
    await walt.wait_for_selector('#connection-state[data-state="closed"]', timeout=15_000)
    await keep_screenshot(walt, "admin-suspended-editor.png")
    await _confirm(wendy, "Reinstate Walt Wood", "Reinstate Walt Wood?")
    await wendy.locator("#person-state", has_text="Active").wait_for()
    assert wendy.url.startswith(person_page)
    back = await (await browser.new_context()).new_page()
    await _sign_in_as(back, base, "walt@westminster.example")
    await back.context.close()

    # Every administration page, as each administrator sees it, at both widths (a11y.py).
    person_path = person_page.removeprefix(base).split("?")[0]
    for viewport in (DESKTOP, PHONE):
        for email, pages in (
            (site.emails["owner"], DEPLOYMENT_PAGES),
            ("wendy@westminster.example", [*ORGANISATION_PAGES, ("person", person_path)]),
        ):
            axe_page = await (
                await browser.new_context(viewport=viewport, bypass_csp=True)
            ).new_page()
            await _sign_in_as(
                axe_page, base, email, PASSWORD if email == site.emails["owner"] else CHOSEN
            )
            for name, path in pages:
                await axe_page.goto(base + path)
                found[f"{name}-{viewport['width']}"] = await audit(axe_page, f"admin-{name}")
            await axe_page.context.close()
    # The states a form reaches: an error summary, and the "are you sure" page.
    await root.goto(f"{base}/admin/organisations")
    await root.get_by_label("Name", exact=True).fill("Another Westminster")
    await root.get_by_label("Code", exact=True).fill("WCC")
    await root.get_by_role("button", name="Add organisation").click()
    await root.locator(".error-summary").wait_for()
    assert await root.locator(".error-summary a").get_attribute("href") == "#org-code"
    found["organisation-error"] = await audit(root, "admin-organisation-error")
    await root.goto(base + person_path)
    await root.get_by_role("button", name="Suspend Walt Wood").click()
    await root.get_by_role("heading", name="Suspend Walt Wood?").wait_for()
    found["confirm-suspend"] = await audit(root, "admin-confirm-suspend")
    assert all(v == [] for v in found.values()), json.dumps(found, indent=1)
    axe_page = await (await browser.new_context()).new_page()
    await _sign_in_as(axe_page, base, "wendy@westminster.example")
    await axe_page.goto(f"{base}/admin/organisations/WCC/audit")
    kinds = await axe_page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert kinds[:5] == [
        "Reinstated",
        "Suspended",
        "Role changed",
        "Role changed",
        "Person invited",
    ]


async def _sign_in_as(page: Any, base: str, email: str, password: str = CHOSEN) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/projects")


async def _invite_to_dpia(database_url: str, site: Site, email: str) -> None:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    owner = await accounts.user_by_email(site.emails["owner"])
    assert owner is not None
    await DpiaService(sessions, SqlUpdateStore(engine)).invite(owner, site.dpia_id, email, "editor")
    await engine.dispose()
