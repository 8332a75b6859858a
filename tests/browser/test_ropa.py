"""The record of processing activities in Chromium, audited (a11y.py) at desktop and phone
widths in every state it reaches: the list, an entry not yet confirmed, confirmed, changed
since confirmation (its DPIA edited over the WebSocket), the form with its error summary,
and an entry added by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.support.live import LiveServer
from tests.support.ropa import add_keepers, fill, set_retention
from tests.support.site import PASSWORD, Site, signed_in

pytestmark = pytest.mark.asyncio


async def _sign_in_as(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/projects")


async def test_the_record_of_processing_passes_the_audit_in_every_state_at_both_widths(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    add_keepers(live)
    owner = await signed_in(base, seeded.emails["owner"])
    try:
        await fill(live, seeded, owner)
        page = await (await browser.new_context(viewport=DESKTOP, bypass_csp=True)).new_page()
        await _sign_in_as(page, base, "dee@camden.example")
        # The menu leads to the one organisation's record the DPO keeps.
        await page.get_by_role("link", name="Record of processing").click()
        await page.wait_for_url(f"{base}/organisations/CAM/ropa")
        await page.get_by_role("heading", name="Record of processing activities").wait_for()
        found: dict[str, list[str]] = {}
        pages: list[tuple[str, str]] = [("list", "/organisations/CAM/ropa")]
        await page.get_by_role("link", name=f"{seeded.dpia_id} P1").click()
        await page.get_by_text("Not yet confirmed").wait_for()
        entry = page.url.removeprefix(base)
        found["unconfirmed"] = await audit(page, "ropa-unconfirmed")
        await page.get_by_role("button", name="Confirm this entry").click()
        await page.get_by_text("Confirmed: this entry follows its DPIA").wait_for()
        found["confirmed"] = await audit(page, "ropa-confirmed")

        await set_retention(live, seeded, owner, "6 months after last contact")
        await page.goto(base + entry)
        await page.locator("#entry-changed").wait_for()
        pages += [("changed", entry), ("changed-list", "/organisations/CAM/ropa?state=changed")]
        pages.append(("no-match", "/organisations/CAM/ropa?q=nothing+matches+this"))

        await page.goto(f"{base}/organisations/CAM/ropa/new")
        await page.get_by_role("button", name="Save entry").click()
        await page.locator(".error-summary").wait_for()
        assert await page.locator(".error-summary a").get_attribute("href") == "#activity"
        found["form-error"] = await audit(page, "ropa-form-error")
        await page.get_by_label("Processing activity").fill("Staff payroll")
        await page.get_by_label("Retention schedule (optional)").fill("6 years after leaving")
        await page.get_by_role("button", name="Save entry").click()
        await page.get_by_text("Added by hand").wait_for()
        pages += [("hand", page.url.removeprefix(base).split("?")[0])]
        pages += [("new", "/organisations/CAM/ropa/new")]
        await page.context.close()

        for viewport in (DESKTOP, PHONE):
            axe_page = await (
                await browser.new_context(viewport=viewport, bypass_csp=True)
            ).new_page()
            await _sign_in_as(axe_page, base, "dee@camden.example")
            for name, path in pages:
                await axe_page.goto(base + path)
                found[f"{name}-{viewport['width']}"] = await audit(axe_page, f"ropa-{name}")
            await axe_page.context.close()
            # A member who keeps no record is told who does.
            other = await (await browser.new_context(viewport=viewport, bypass_csp=True)).new_page()
            await _sign_in_as(other, base, seeded.emails["owner"])
            await other.goto(f"{base}/ropa")
            await other.get_by_text("kept by its administrators").wait_for()
            found[f"none-{viewport['width']}"] = await audit(other, "ropa-none")
            await other.context.close()
        assert all(v == [] for v in found.values()), json.dumps(found, indent=1)
    finally:
        await owner.aclose()
