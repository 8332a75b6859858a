"""Real Chromium (Debian's package) driven by Playwright against the live server."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.support.live import LiveServer
from tests.support.site import PASSWORD, Site, seeded_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("OPENDPIA_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "var" / "test-artifacts"
EDITOR_BUNDLE = ROOT / "frontend" / "dist" / "editor.js"
AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"


def _require(condition: bool, problem: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (required in CI)")
    pytest.skip(problem)


@pytest.fixture
def site(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    with seeded_server(sqlite_url) as served:
        yield served


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[object]:
    _require(shutil.which(CHROMIUM) is not None, f"no Chromium at {CHROMIUM}: run `make browser`")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def sign_in(browser: object, base: str, email: str, *, bypass_csp: bool = False) -> object:
    """A new browser context signed in as ``email``, on the projects dashboard."""
    context = await browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1400, "height": 1000}, bypass_csp=bypass_csp
    )
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/projects")
    return page


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# A screenshot is evidence kept for a reviewer, not a check: what a test asserts is read from
# the page. On a loaded machine Chromium may take long to composite a tall page, so the
# screenshot gets a generous time and, if it still cannot be taken, a note says so in its
# place (and a warning in the test summary) instead of failing the test.
SCREENSHOT_TIMEOUT_MS = 90_000


async def keep_screenshot(target: Any, name: str, **options: Any) -> None:
    """Save a screenshot of ``target`` (a page or a locator) as the artefact ``name``."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    path = artifact(name)
    try:
        await target.screenshot(path=path, timeout=SCREENSHOT_TIMEOUT_MS, **options)
    except PlaywrightTimeout as error:
        note = f"No screenshot: Chromium did not take it in {SCREENSHOT_TIMEOUT_MS} ms.\n"
        path.with_suffix(".txt").write_text(note + str(error) + "\n")
        warnings.warn(f"screenshot {name} not taken: {error}", stacklevel=2)
