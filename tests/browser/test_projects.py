"""A project walked in two browsers: an idea written by two organisations at once, then the
DPIA step started from the project page (issue 16).

The project page's screenshot (``var/test-artifacts/readme-project.png``) is the one on the
README's first screen (docs/images/project.png): copy it there when the page's look changes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.browser.conftest import keep_screenshot, sign_in
from tests.support.live import LiveServer, keeps_every_keystroke
from tests.support.site import Site

pytestmark = pytest.mark.asyncio

OUTCOME = '[data-field="outcome.outcome"] .ProseMirror'


async def _open_idea(page: Any, base: str, project_id: str) -> None:
    await page.goto(f"{base}/projects/{project_id}")
    await page.get_by_role("link", name=re.compile(r"^Idea")).click()
    await page.wait_for_url(f"{base}/dpias/{project_id}-IDEA")
    await page.locator('a.section-link[data-section="outcome"]').click()
    await page.wait_for_selector(OUTCOME)
    await page.wait_for_selector('#connection-state[data-state="connected"]')


async def _field_text(page: Any) -> str:
    text = await page.evaluate(
        """(selector) => {
            const copy = document.querySelector(selector).cloneNode(true);
            copy.querySelectorAll('.collaboration-carets__caret').forEach((c) => c.remove());
            return copy.textContent;
        }""",
        OUTCOME,
    )
    return str(text)


async def test_a_project_goes_from_its_idea_written_together_to_its_dpia(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    camden = await sign_in(browser, base, seeded.emails["owner"])

    # Projects are the front door: a new one starts at its idea.
    await camden.get_by_role("link", name="New project").first.click()
    await camden.wait_for_url(f"{base}/projects/new")
    await camden.get_by_label("Title").fill("Warmer homes for older residents")
    await camden.get_by_role("button", name="Create project").click()
    await camden.wait_for_url(re.compile(r"/projects/PRJ-CAM-\d+-\d+$"))
    project_id = camden.url.rsplit("/", 1)[1]
    current = camden.locator('[aria-current="step"] h3')
    assert "Generate ideas" in await current.inner_text()

    # The trust's editor joins the whole project; the idea is theirs to write too.
    await camden.get_by_label("Email").fill(seeded.emails["editor"])
    await camden.get_by_label("Role", exact=True).first.select_option("editor")
    await camden.get_by_role("button", name="Add to the project").click()
    await camden.wait_for_selector("text=now takes part in 1 document of this project")

    trust = await sign_in(browser, base, seeded.emails["editor"])
    await trust.get_by_role("link", name=project_id).click()
    await trust.wait_for_url(f"{base}/projects/{project_id}")
    assert await trust.get_by_role("button", name=re.compile("Start this step")).count() == 0
    await _open_idea(trust, base, project_id)
    await _open_idea(camden, base, project_id)
    assert "Step 1 of 7: Generate ideas, in project" in await camden.inner_text("#project-context")

    await camden.locator(OUTCOME).click()
    await trust.locator(OUTCOME).click()
    typed = ["Fewer older residents in cold homes. ", "Fewer winter admissions. "]
    await asyncio.gather(
        camden.keyboard.type(typed[0], delay=15), trust.keyboard.type(typed[1], delay=15)
    )
    async with asyncio.timeout(30):  # both converge on one text that lost no keystroke
        while (text := await _field_text(camden)) != await _field_text(
            trust
        ) or not keeps_every_keystroke(text, typed):
            await asyncio.sleep(0.05)
    await camden.wait_for_selector('#save-state[data-state="saved"]')

    # Back on the project page, the owner starts the DPIA step (pre-screening and
    # feasibility are started the same way once their templates are installed).
    await camden.get_by_role("link", name=f"← Project {project_id}").click()
    await camden.wait_for_url(f"{base}/projects/{project_id}")
    await camden.get_by_role("button", name=re.compile("Start this step.*Co-create DPIA")).click()
    await camden.wait_for_url(re.compile(r"/dpias/DPIA-CAM-\d+-\d+$"))
    dpia_id = camden.url.rsplit("/", 1)[1]
    await camden.wait_for_selector('#connection-state[data-state="connected"]')
    assert "Step 4 of 7: Co-create DPIA, in project" in await camden.inner_text("#project-context")

    # The trust's editor takes part in the DPIA too, and the project is at step 4.
    await trust.goto(f"{base}/projects/{project_id}")
    assert "Co-create DPIA" in await trust.locator('[aria-current="step"] h3').inner_text()
    await trust.get_by_role("link", name=re.compile(f"DPIA.*{dpia_id}")).click()
    await trust.wait_for_url(f"{base}/dpias/{dpia_id}")
    await trust.wait_for_selector('#connection-state[data-state="connected"]')

    await camden.goto(f"{base}/projects/{project_id}")
    await camden.set_viewport_size({"width": 1100, "height": 1200})
    await keep_screenshot(camden, "readme-project.png")
