"""The template library's pages in a real browser, with axe at desktop and phone widths:
the organisation's templates, a draft in its editor (and refused with an error summary), a
published version, the new-DPIA form with the template choice, and a DPIA's template page
showing what moving to a newer version changes, then the move made by keyboard-usable
controls."""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.browser.conftest import EDITOR_BUNDLE, _require, sign_in
from tests.browser.test_administration import _grant
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import Site, csrf_field, prepare, seed_site, signed_in

pytestmark = pytest.mark.asyncio
LIBRARY = "/admin/organisations/CAM/templates"
TEMPLATE = f"{LIBRARY}/cam-street-cameras"


@pytest.fixture
def admin_site(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    site = asyncio.run(seed_site(sqlite_url))
    asyncio.run(_grant(sqlite_url, site.emails["owner"]))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site


async def _post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    page = await client.get(path)
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


def _content(page: str) -> dict[str, object]:
    found = re.search(r"<textarea id=\"template-[a-z]+\"[^>]*>(.*?)</textarea>", page, re.S)
    assert found
    content: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return content


async def test_template_library_pages_pass_axe(
    admin_site: tuple[LiveServer, Site], browser: object
) -> None:
    live, site = admin_site
    base = f"http://127.0.0.1:{live.port}"
    owner = await signed_in(base, site.emails["owner"])
    try:
        made = await _post(owner, LIBRARY, title="Street cameras", source="uk-dpia")
        assert made.headers["location"] == TEMPLATE
        assert (await _post(owner, TEMPLATE, action="publish")).status_code == 303
        new = await owner.get("/dpias/new")
        created = await owner.post(
            "/dpias/new",
            data={
                "csrftoken": csrf_field(new.text),
                "title": "Cameras on Camden High Street",
                "lead": re.findall(r'<option value="(\d+)"', new.text)[0],
                "template": "cam-street-cameras",
            },
        )
        assert created.status_code == 303, created.text
        dpia_path = created.headers["location"]
        assert (await _post(owner, TEMPLATE, action="edit")).status_code == 303
        second = _content((await owner.get(TEMPLATE)).text)
        sections = second["sections"]
        assert isinstance(sections, list)
        sections[0]["title"] = "Screening for cameras"
        assert (
            await _post(owner, TEMPLATE, action="save", content=json.dumps(second))
        ).status_code == 303
    finally:
        await owner.aclose()

    found: dict[str, list[str]] = {}
    pages = [
        ("library", LIBRARY),
        ("draft", TEMPLATE),
        ("new-dpia", "/dpias/new"),
    ]
    for viewport in (DESKTOP, PHONE):
        page = await sign_in(browser, base, site.emails["owner"], bypass_csp=True)
        await page.set_viewport_size(viewport)  # type: ignore[attr-defined]
        for name, path in pages:
            await page.goto(base + path)  # type: ignore[attr-defined]
            found[f"{name}-{viewport['width']}"] = await audit(page, f"templates-{name}")
        # A malformed draft: the error summary names the field, linked to the box.
        await page.goto(base + TEMPLATE)  # type: ignore[attr-defined]
        box = page.get_by_label("Template (JSON)")  # type: ignore[attr-defined]
        await box.fill('{"sections": []}')
        await page.get_by_role("button", name="Save the draft").click()  # type: ignore[attr-defined]
        summary = page.locator(".error-summary")  # type: ignore[attr-defined]
        await summary.wait_for()
        assert "'title' must be a str" in await summary.inner_text()
        link = page.locator(".error-summary a")  # type: ignore[attr-defined]
        assert await link.get_attribute("href") == "#template-content"
        found[f"draft-error-{viewport['width']}"] = await audit(page, "templates-draft-error")
        if viewport is PHONE:
            # Publish version 2 with the keyboard alone.
            await page.goto(base + TEMPLATE)  # type: ignore[attr-defined]
            await page.get_by_role("button", name="Publish version 2").focus()  # type: ignore[attr-defined]
            await page.keyboard.press("Enter")  # type: ignore[attr-defined]
            await page.get_by_text("Version 2 is published.").wait_for()  # type: ignore[attr-defined]
        await page.context.close()  # type: ignore[attr-defined]
    for viewport in (DESKTOP, PHONE):
        page = await sign_in(browser, base, site.emails["owner"], bypass_csp=True)
        await page.set_viewport_size(viewport)  # type: ignore[attr-defined]
        await page.goto(base + TEMPLATE)  # type: ignore[attr-defined]
        found[f"published-{viewport['width']}"] = await audit(page, "templates-published")
        # The DPIA's template page: what moving to version 2 changes.
        await page.goto(f"{base}{dpia_path}/template")  # type: ignore[attr-defined]
        await page.get_by_text("What moving to version 2 changes").wait_for()  # type: ignore[attr-defined]
        changes = page.locator("#template-changes")  # type: ignore[attr-defined]
        assert "becomes “Screening for cameras”" in await changes.inner_text()
        found[f"move-preview-{viewport['width']}"] = await audit(page, "templates-move-preview")
        if viewport is PHONE:
            await page.get_by_label(re.compile("I have read what changes")).check()  # type: ignore[attr-defined]
            await page.get_by_role("button", name="Move to version 2").click()  # type: ignore[attr-defined]
            await page.get_by_text("Moved. The DPIA now follows version 2").wait_for()  # type: ignore[attr-defined]
            found["moved-320"] = await audit(page, "templates-moved")
            await page.goto(base + dpia_path)  # type: ignore[attr-defined]
            await page.locator("#template-context", has_text="version 2.").wait_for()  # type: ignore[attr-defined]
        await page.context.close()  # type: ignore[attr-defined]
    assert all(v == [] for v in found.values()), json.dumps(found, indent=1)
