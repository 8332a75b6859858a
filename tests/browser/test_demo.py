"""The demo DPIA as a newcomer first sees it: two organisations in one editor; and the demo
project as Camden's DPO finds it: a signature waiting, given on the sign-off page.

Its screenshot (``var/test-artifacts/readme-editor.png``) is the one in the README
(docs/images/editor.png): copy it there when the editor's look changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.demo import DEMO_PASSWORD, seed_demo
from server.services.dpias import DpiaService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from server.usecases.demo import DemoProject, seed_demo_project
from tests.browser.a11y import DESKTOP
from tests.browser.conftest import keep_screenshot
from tests.support.exports import demo_world
from tests.support.live import LiveServer, make_settings, serving
from tests.support.review import record_services

pytestmark = pytest.mark.asyncio


async def _seed(database_url: str) -> str:
    async with demo_world(database_url) as demo:
        return demo.dpia_id


@pytest.fixture
def demo(sqlite_url: str) -> Iterator[tuple[LiveServer, str]]:
    dpia_id = asyncio.run(_seed(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, dpia_id


async def _seed_project(database_url: str) -> DemoProject:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        store = SqlUpdateStore(engine)
        signoffs = record_services(sessions, store, DpiaService(sessions, store))[2]
        await seed_demo(sessions, store, signoffs)
        project = await seed_demo_project(sessions, store, signoffs, password=DEMO_PASSWORD)
        assert project is not None
        return project
    finally:
        await engine.dispose()


@pytest.fixture
def demo_project(sqlite_url: str) -> Iterator[tuple[LiveServer, DemoProject]]:
    project = asyncio.run(_seed_project(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, project


async def _signed_in(browser: Any, base: str, email: str) -> Any:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(DEMO_PASSWORD)
    await page.locator("#password").press("Enter")
    await page.wait_for_url(f"{base}/projects")
    return page


async def test_camdens_dpo_finds_the_demo_projects_dpia_waiting_and_signs_it(
    demo_project: tuple[LiveServer, DemoProject], browser: Any
) -> None:
    live, project = demo_project
    base = f"http://127.0.0.1:{live.port}"
    page = await _signed_in(browser, base, "dpo@camden.example")
    waiting = page.locator("#waiting li")
    await waiting.filter(has_text=project.isa_id).wait_for()
    await waiting.filter(has_text=f"{project.dpia_id}:").get_by_role("link").click()
    await page.wait_for_url(f"{base}/projects/{project.project_id}/sign-off")
    await page.get_by_role("button", name=f"Sign {project.dpia_id} as Grace Okafor").click()
    await page.locator(".notice[role=status]", has_text=f"Signed {project.dpia_id}").wait_for()
    # Both parties have signed the DPIA now; the ISA still waits for Camden's DPO.
    await page.goto(f"{base}/projects")
    await waiting.filter(has_text=project.isa_id).wait_for()
    assert await waiting.filter(has_text=f"{project.dpia_id}:").count() == 0


async def _open(browser: Any, base: str, email: str, dpia_id: str) -> Any:
    page = await _signed_in(browser, base, email)
    await page.goto(f"{base}/dpias/{dpia_id}#risks")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    return page


async def test_the_demo_opens_with_two_organisations_writing_it_together(
    demo: tuple[LiveServer, str], browser: Any
) -> None:
    live, dpia_id = demo
    base = f"http://127.0.0.1:{live.port}"
    trust = await _open(browser, base, "ig@nlft.example", dpia_id)
    camden = await _open(browser, base, "ig.lead@camden.example", dpia_id)
    await camden.locator(".presence-user", has_text="Sam Whitfield").wait_for()
    await camden.locator(".row-card").first.wait_for()
    assert await camden.locator('[data-action="add-row"]').inner_text() == "Add a risk"
    title = camden.locator('.row-card [data-column="title"] input').first
    assert (await title.bounding_box() or {"width": 0})["width"] > 400  # titles read at length
    # Sam writes in "Need": Priya sees his named caret there.
    await camden.goto(f"{base}/dpias/{dpia_id}#need")
    await trust.goto(f"{base}/dpias/{dpia_id}#need")
    await trust.locator('[data-field="need.aims"] .ProseMirror').click()
    await trust.keyboard.press("Control+End")
    await trust.keyboard.type(" Outreach workers see the same list each morning.")
    await camden.locator(".collaboration-carets__label", has_text="Sam Whitfield").wait_for()
    await camden.evaluate("() => document.activeElement.blur()")  # no focus ring in the picture
    await keep_screenshot(camden, "readme-editor.png")
