"""Each new assessment template opens in the real editor (issue 17): every section of its
own renders, the editor connects, its risk register and heat maps are there, an answer
typed in one of its fields is saved, no script error, and axe finds nothing."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.templates import assessment_templates
from tests.browser.a11y import audit
from tests.browser.conftest import sign_in
from tests.support.live import LiveServer
from tests.support.site import Site

pytestmark = pytest.mark.asyncio


@pytest.mark.timeout(600)
async def test_every_assessment_template_opens_in_the_editor(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    owner = live.call(live.runtime.accounts.user_by_email(seeded.emails["owner"]))
    assert owner is not None
    page: Any = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    problems: dict[str, list[str]] = {}
    for template in assessment_templates():
        if template.id == "uk-dpia":
            continue  # the editor tests cover it
        dpia = live.call(
            live.runtime.dpias.create(
                owner, f"From {template.id}", owner.organisation_ids[0], template_id=template.id
            )
        )
        await page.goto(f"{base}/dpias/{dpia}")
        await page.wait_for_selector('#connection-state[data-state="connected"]')
        for section in template.sections:  # the editor shows one section at a time
            await page.evaluate("(id) => { location.hash = id }", section["id"])
            await page.wait_for_selector(f'section.dpia-section[data-section="{section["id"]}"]')
        await page.evaluate("() => { location.hash = 'risks' }")
        await page.wait_for_selector('[data-field="risks.register"]')
        problems[f"{template.id}-risks"] = await audit(page, f"editor-{template.id}-risks")
        section_id, text_field = next(
            (s["id"], f"{s['id']}.{f['id']}")
            for s in template.sections
            for f in s["fields"]
            if f["kind"] == "text"
        )
        await page.evaluate("(id) => { location.hash = id }", section_id)
        box = page.locator(f'[data-field="{text_field}"] input')
        await box.fill("Typed in the browser")
        await box.press("Tab")
        await page.wait_for_selector('#save-state[data-state="saved"]')
        problems[template.id] = await audit(page, f"editor-{template.id}")
    assert errors == []
    assert {k: v for k, v in problems.items() if v} == {}
    stored = live.call(live.runtime.history.current(dpia))
    assert "Typed in the browser" in str(stored.content)
