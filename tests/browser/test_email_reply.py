"""A partner's email reply, seen in a browser: live, attributed, with its files to download."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from tests.browser.conftest import EDITOR_BUNDLE, _require, keep_screenshot, sign_in
from tests.support.bridge import (
    PARTNER,
    PARTNER_NAME,
    BridgeSite,
    deliver,
    reply_address,
    seed_bridge_site,
)
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio


@pytest.fixture
def bridge_site(sqlite_url: str) -> Iterator[tuple[LiveServer, BridgeSite]]:
    _require(EDITOR_BUNDLE.is_file(), "the editor is not built: run `make setup`")
    prepare(sqlite_url)
    seeded = asyncio.run(seed_bridge_site(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, seeded


async def test_an_email_reply_appears_live_with_its_attachment_and_a_folded_signature(
    bridge_site: tuple[LiveServer, BridgeSite], browser: Any
) -> None:
    live, site = bridge_site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, site.site.emails["owner"])
    await page.goto(f"{base}/dpias/{site.site.dpia_id}#need")
    await page.locator('a.section-link[data-section="need"]').click()
    await page.wait_for_selector('#connection-state[data-state="connected"]')

    to = await reply_address(live.settings, site.partner_id, site.site.dpia_id, "need", "aims")
    message = EmailMessage()
    message["From"] = f"{PARTNER_NAME} <{PARTNER}>"
    message["To"] = to
    message["Subject"] = "Re: Need for a DPIA"
    message["Message-ID"] = "<browser@partner.example>"
    message.set_content(
        "The sharing agreement is attached.\n\n- signed by both boroughs\n- valid to 2028\n\n"
        "Kind regards,\nPat Partner\nPartner Borough Council\n\n"
        "On Tue, 24 Nov 2026 at 09:00, OpenDPIA <notifications@opendpia.localhost> wrote:\n"
        "> Olive Owner changed the aims\n"
    )
    message.add_attachment(
        b"%PDF-1.4 agreement", maintype="application", subtype="pdf", filename="agreement.pdf"
    )
    assert (await deliver(live.settings.bridge_port, message.as_bytes(), [to])).data == 250

    comment = page.locator(
        "#comment-list li.comment", has_text="The sharing agreement is attached."
    )
    await comment.wait_for()  # Playwright's default: 30 s
    assert await comment.locator(".comment-author").inner_text() == PARTNER_NAME
    assert await comment.locator(".channel-badge").inner_text() == "Email"
    assert (
        "- signed by both boroughs\n- valid to 2028"
        in await comment.locator(".comment-text").first.inner_text()
    )
    signature = comment.locator("details.comment-signature")
    assert await signature.get_attribute("open") is None  # kept aside, not shown by default
    assert "Kind regards" not in await comment.locator(".comment-text").first.inner_text()
    async with page.expect_download() as download_info:
        await comment.locator(".comment-attachments a").click()
    download = await download_info.value
    assert download.suggested_filename == "agreement.pdf"
    await keep_screenshot(page, "email-reply.png")
