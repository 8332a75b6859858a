"""The review page of an approved DPIA (issue 17) passes axe at desktop and phone widths, in
each state it has: with its schedule and forms, after a trigger is raised, after an error,
and the approved version under review beside its new version; started with the keyboard
from the workflow page's "Start review"."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from server.storage.models import Dpia
from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.browser.conftest import sign_in
from tests.support.live import LiveServer
from tests.support.review import append_change, value
from tests.support.site import Site

pytestmark = pytest.mark.asyncio


async def _approve(live: LiveServer, dpia_id: str) -> None:
    runtime = live.runtime
    await append_change(
        runtime.history._store,  # type: ignore[attr-defined]
        dpia_id,
        value("review.next_review", "2020-01-01"),
        "user:1",
    )
    async with runtime.sessions.begin() as session:
        await session.execute(update(Dpia).where(Dpia.id == dpia_id).values(status="in_force"))


async def test_the_review_pages_pass_axe_at_desktop_and_phone_widths(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base, dpia = f"http://127.0.0.1:{live.port}", seeded.dpia_id
    live.call(_approve(live, dpia))
    page = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    found: dict[str, list[str]] = {}

    async def check(name: str) -> None:
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            found[f"{name}-{width}"] = await audit(page, f"axe-review-{name}-{width}")

    await page.goto(f"{base}/dpias/{dpia}/review")
    await page.wait_for_selector("text=Review was due on 01 January 2020")
    await check("due")
    await page.select_option("#trigger", "new-technology")
    await page.get_by_label("What changed").fill("The letters are now sent by a new platform")
    await page.get_by_role("button", name="Raise a review trigger").click()
    await page.wait_for_selector("text=The letters are now sent by a new platform")
    await check("raised")
    # An error names the field to fix, in the error summary.
    await page.evaluate(
        "() => { const o = document.querySelector('#trigger option'); o.value = 'meteor'; }"
    )
    await page.select_option("#trigger", "meteor")
    await page.get_by_role("button", name="Raise a review trigger").click()
    await page.wait_for_selector(".error-summary")
    await check("error")
    # Start review with the keyboard from the workflow page.
    await page.goto(f"{base}/dpias/{dpia}/workflow")
    await check("workflow-in-force")
    await page.select_option("#reason", "new-technology")
    await page.get_by_role("button", name="Start review").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#in-force-version")
    await check("new-version-workflow")
    await page.goto(f"{base}/dpias/{dpia}/review")
    await page.wait_for_selector("#review-successor")
    await check("under-review")
    assert found == {name: [] for name in found}, json.dumps(found, indent=1)
