"""The demo DPIA as a newcomer first sees it: two organisations in one editor.

Its screenshot (``var/test-artifacts/readme-editor.png``) is the one in the README
(docs/images/editor.png): copy it there when the editor's look changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from server.services.demo import DEMO_PASSWORD
from tests.browser.a11y import DESKTOP
from tests.browser.conftest import artifact
from tests.support.exports import demo_world
from tests.support.live import LiveServer, make_settings, serving

pytestmark = pytest.mark.asyncio


async def _seed(database_url: str) -> str:
    async with demo_world(database_url) as demo:
        return demo.dpia_id


@pytest.fixture
def demo(sqlite_url: str) -> Iterator[tuple[LiveServer, str]]:
    dpia_id = asyncio.run(_seed(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, dpia_id


async def _open(browser: Any, base: str, email: str, dpia_id: str) -> Any:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(DEMO_PASSWORD)
    await page.locator("#password").press("Enter")
    await page.wait_for_url(f"{base}/projects")
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
    await camden.screenshot(path=artifact("readme-editor.png"))
