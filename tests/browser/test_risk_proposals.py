"""The proposed risks page in a real browser (issue 17): reached from the editor's link,
it passes axe and reflows at desktop and phone widths in each state (waiting, refused
without a reason, decided); accepting puts the risk in the register the open editor shows;
the "New DPIA" form with its template choice passes too."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Map

from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.browser.conftest import sign_in
from tests.support.live import LiveServer
from tests.support.site import Site
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


async def _answer(live: LiveServer, dpia: str) -> None:
    writer = await YClient.connect(live.url(dpia, saved=True))
    try:
        await writer.synced.wait()
        values = writer.doc.get("values", type=Map)
        values["screening.triggers"] = ["special-category", "innovative-technology"]
        await writer.wait_saved()
    finally:
        await writer.close()


@pytest.mark.timeout(600)
async def test_proposed_risks_are_decided_in_the_browser_and_every_state_passes_axe(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base, dpia = f"http://127.0.0.1:{live.port}", seeded.dpia_id
    await _answer(live, dpia)
    page: Any = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    found: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        for viewport in (DESKTOP, PHONE):
            await page.set_viewport_size(viewport)
            found[f"{name}-{viewport['width']}"] = await audit(page, f"proposed-risks-{name}")
        await page.set_viewport_size(DESKTOP)

    await page.goto(f"{base}/dpias/new")
    await page.wait_for_selector("#template")
    await check("new-dpia")

    await page.goto(f"{base}/dpias/{dpia}")
    link = page.locator("#proposed-risks-link")
    await link.wait_for()
    assert await link.inner_text() == "Proposed risks (2 waiting)"
    await link.click()
    await page.wait_for_selector("#proposal-special-category-disclosure")
    await check("waiting")

    await page.locator("#dismiss-new-technology-unknowns").click()
    await page.wait_for_selector(".error-summary")
    assert "a dismissal needs a reason" in await page.locator(".error-summary").inner_text()
    await check("no-reason")

    await (
        page.get_by_label("Why it does not apply")
        .nth(1)
        .fill("The system is a standard case-management product already in use")
    )
    await page.locator("#dismiss-new-technology-unknowns").click()
    await page.wait_for_selector("#dismissed-notice")
    await page.locator("#accept-special-category-disclosure").click()
    await page.wait_for_selector("#accepted-notice")
    assert "R1" in await page.locator("#accepted-notice").inner_text()
    await check("decided")

    await page.goto(f"{base}/dpias/{dpia}#risks")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    register = page.locator('[data-field="risks.register"]')
    await register.get_by_text("R1").first.wait_for()
    assert await page.locator("#proposed-risks-link").inner_text() == "Proposed risks"

    problems = {name: issues for name, issues in found.items() if issues}
    assert problems == {}, problems
