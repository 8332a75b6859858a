"""The review, history, version and import pages are usable with a keyboard and pass axe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.a11y import audit
from tests.browser.conftest import keep_screenshot, sign_in
from tests.support.live import LiveServer
from tests.support.site import Site

pytestmark = pytest.mark.asyncio


async def test_no_accessibility_violations_on_the_review_pages(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    dpia = seeded.dpia_id
    # A section sent for review through the form, so the pages have something to show.
    await page.goto(f"{base}/dpias/{dpia}/workflow")
    await page.select_option("#ig-step", "assess_feasibility")
    await page.get_by_role("button", name="Set step").click()
    await page.wait_for_selector("text=3. Assess feasibility")
    # The confirmation pages (issue 13) ask about a participant and a party of the DPIA.
    await page.goto(f"{base}/dpias/{dpia}/participants")
    participant = await page.locator('input[name="participant"]').last.get_attribute("value")
    party = await page.locator('input[name="party"]').first.get_attribute("value")
    pages = (
        ("workflow", f"/dpias/{dpia}/workflow"),
        ("send-for-review-check", f"/dpias/{dpia}/workflow/confirm?status=in_review"),
        ("history", f"/dpias/{dpia}/history"),
        ("version", f"/dpias/{dpia}/versions/1?compare=1"),
        ("version-against-current", f"/dpias/{dpia}/versions/1"),
        ("participants", f"/dpias/{dpia}/participants"),
        ("remove-participant", f"/dpias/{dpia}/participants/remove?participant={participant}"),
        ("remove-party", f"/dpias/{dpia}/participants/remove?party={party}"),
        ("import", "/dpias/import"),
        ("dashboard-filtered", "/dpias?ig_step=assess_feasibility"),
    )
    found = {}
    for name, path in pages:
        await page.goto(base + path)
        found[name] = await audit(page, f"axe-{name}")
    assert found == {name: [] for name, _ in pages}, json.dumps(found, indent=1)
    await page.goto(f"{base}/dpias?ig_step=assess_feasibility")
    assert await page.locator(f"a[href='/dpias/{dpia}']").count() == 1
    await page.goto(f"{base}/dpias?ig_step=implement")
    assert await page.locator(f"a[href='/dpias/{dpia}']").count() == 0


async def test_the_editor_shows_sign_off_and_staleness_in_its_section_list(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    from pycrdt import XmlFragment

    from server.domain.templates import append_paragraphs
    from tests.support.site import signed_in
    from tests.support.yclient import YClient

    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    writer = await YClient.connect(live.url(dpia, saved=True))
    await writer.synced.wait()
    aims = writer.doc.get("field:need.aims", type=XmlFragment)
    append_paragraphs(aims, ["Find people sooner"])
    await writer.wait_saved()
    clients = {r: await signed_in(base, seeded.emails[r]) for r in ("editor", "dpo")}
    try:
        for role, body in (
            ("editor", {"section": "need", "step": "submit"}),
            ("dpo", {"section": "need", "step": "review"}),
        ):
            client = clients[role]
            response = await client.post(
                f"/api/dpias/{dpia}/sections",
                json=body,
                headers={"x-csrftoken": client.cookies["csrftoken"]},
            )
            assert response.status_code == 200, response.text
        dpo = clients["dpo"]
        signed = await dpo.post(
            f"/api/dpias/{dpia}/signoffs",
            json={"kind": "section", "target": "need", "decision": "approve"},
            headers={"x-csrftoken": dpo.cookies["csrftoken"]},
        )
        assert signed.status_code == 200, signed.text
        page = await sign_in(browser, base, seeded.emails["dpo"])
        await page.goto(f"{base}/dpias/{dpia}#need")
        review = page.locator('a.section-link[data-section="need"] .section-review')
        assert await review.get_attribute("data-review") == "signed_off"
        assert (await review.inner_text()).endswith("Signed off")
        append_paragraphs(aims, ["and house them"])
        await writer.wait_saved()
        await page.reload()
        assert await review.get_attribute("data-review") == "stale"
        assert (await review.inner_text()).endswith("Changed since sign-off")
        await keep_screenshot(page, "editor-stale-section.png")
    finally:
        await writer.close()
        for client in clients.values():
            await client.aclose()
