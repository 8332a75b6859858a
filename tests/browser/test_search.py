"""The searchable library in Chromium: typed into the projects page's search box, the
results page (passages, filters, hostile text) passes axe and does not scroll sideways at
desktop and phone widths (issue 17)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.a11y import DESKTOP, PHONE, audit
from tests.browser.conftest import EDITOR_BUNDLE, _require, sign_in
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.search import Library, seed_library
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio


@pytest.fixture
def library(sqlite_url: str) -> Iterator[tuple[LiveServer, Library]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    seeded = asyncio.run(seed_library(sqlite_url))
    with serving(make_settings(sqlite_url, search_index_delay_seconds=0.2)) as live:
        yield live, seeded


async def test_the_results_page_is_found_from_the_projects_page_and_passes_axe(
    library: tuple[LiveServer, Library], browser: Any
) -> None:
    live, seeded = library
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.ann, bypass_csp=True)  # axe is injected
    # The startup sweep indexes the seeded documents: wait for it through the page itself.
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            await page.goto(f"{base}/projects")
            await page.get_by_label("Search your documents").fill("discharge")
            await page.get_by_role("button", name="Search").click()
            await page.wait_for_url(f"{base}/search?q=discharge")
            if await page.locator(".search-result mark").count():
                break
    assert await page.locator(".search-result").count() == 2
    assert seeded.secret[0] not in await page.inner_text("main")
    await page.get_by_label("Status").select_option("draft")
    await page.get_by_label("Template").select_option("project-idea")
    await page.get_by_role("button", name="Search").click()
    await page.wait_for_url(f"{base}/search?*template=project-idea*")
    assert await page.locator(".search-result").count() == 1

    # Every state of the page: results with hostile text, no results, filters alone.
    for query in ("q=quokka", "q=nothing+matches+this", "review=overdue", "q=discharge"):
        for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
            await page.set_viewport_size(viewport)
            await page.goto(f"{base}/search?{query}")
            if query == "q=quokka":
                assert await page.locator(".passage img").count() == 0
                assert "<img src=x" in await page.inner_text(".passage")
            problems = await audit(page, f"search-{query.split('=')[1][:12]}-{name}")
            assert problems == [], problems
