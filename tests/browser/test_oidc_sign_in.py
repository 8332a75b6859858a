"""A person signs in through their organisation's provider in real Chromium: the app's
page asks for the email, the provider's own login page takes the password, and the
browser comes back signed in (the sign-in page's Content-Security-Policy lets its form
lead to the provider). The settings page passes axe and works from the keyboard."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import AXE, keep_screenshot
from tests.support.oidc import PROVIDER_PASSWORD
from tests.support.sso import Sso, sso_site

pytestmark = pytest.mark.asyncio


@pytest.fixture
def sso(sqlite_url: str, tmp_path: Path) -> Iterator[Sso]:
    with sso_site(sqlite_url, tmp_path) as site:
        yield site


async def _through_provider(
    browser: Any, base: str, email: str, login: str, *, bypass_csp: bool = False
) -> Any:
    context = await browser.new_context(
        viewport={"width": 1200, "height": 900}, bypass_csp=bypass_csp
    )
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Sign in").click()
    # The provider's own (development) login page.
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", PROVIDER_PASSWORD)
    await page.click("button[type=submit]")
    return page


async def test_a_person_signs_in_through_the_providers_real_login_page(
    sso: Sso, browser: Any
) -> None:
    base = f"http://127.0.0.1:{sso.live.port}"
    page = await _through_provider(browser, base, "owner@camden.example", "olive")
    await page.wait_for_url(f"{base}/projects")
    await page.wait_for_selector("text=Shared DPIA")
    assert "Olive Owner" in await page.inner_text("header")
    await keep_screenshot(page, "oidc-signed-in.png")
    # Signing out ends the app's session.
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{base}/login")
    await page.goto(f"{base}/dpias")
    await page.wait_for_url(f"{base}/login?next=/dpias")


async def test_a_refusal_is_a_page_that_says_why(sso: Sso, browser: Any) -> None:
    base = f"http://127.0.0.1:{sso.live.port}"
    page = await _through_provider(browser, base, "stranger@camden.example", "stranger")
    await page.wait_for_selector("text=another organisation's directory")
    assert await page.title() == "Sign-in did not work · OpenDPIA"
    await keep_screenshot(page, "oidc-refused.png")


async def test_the_sign_in_settings_page_passes_axe_and_saves_from_the_keyboard(
    sso: Sso, browser: Any
) -> None:
    base = f"http://127.0.0.1:{sso.live.port}"
    # Carol is in Camden's administrator group at the provider: she administers Camden.
    # (axe is injected as a script, which the app's policy rightly forbids: bypassed here.)
    page = await _through_provider(browser, base, "carol@camden.example", "carol", bypass_csp=True)
    await page.wait_for_url(f"{base}/projects")
    await page.goto(f"{base}/admin/organisations/CAM/sign-in")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document)")
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, json.dumps(serious, indent=1)[:3000]
    await page.get_by_label("Administrator group (optional)").fill("new-admin-group")
    await page.get_by_label("Administrator group (optional)").press("Enter")
    await page.wait_for_selector("text=Saved.")
    assert await page.get_by_label("Administrator group (optional)").input_value() == (
        "new-admin-group"
    )
    await keep_screenshot(page, "oidc-settings.png", full_page=True)
