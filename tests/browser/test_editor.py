"""Two organisations write one DPIA in two browsers; viewers cannot; nothing is lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlFragment, write_var_uint

from server.domain.access import Role
from tests.browser.a11y import audit, read_link
from tests.browser.conftest import keep_screenshot, sign_in
from tests.support.live import LiveServer, keeps_every_keystroke
from tests.support.site import Site, seeded_server
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

FIELD = '[data-field="need.aims"] .ProseMirror'
CONTAINS = """([selector, texts]) => {
    const node = document.querySelector(selector);
    return node !== null && texts.every((text) => node.innerText.includes(text));
}"""


async def _open_editor(page: Any, base: str, dpia_id: str) -> None:
    await page.goto(f"{base}/dpias/{dpia_id}#need")
    await page.locator('a.section-link[data-section="need"]').click()
    await page.wait_for_selector(FIELD)
    await page.wait_for_selector('#connection-state[data-state="connected"]')


async def _editors(browser: Any, site: tuple[LiveServer, Site], *roles: str) -> list[Any]:
    """One signed-in page per role, each on the DPIA's "Need" section, connected."""
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    pages = [await sign_in(browser, base, seeded.emails[role]) for role in roles]
    for page in pages:
        await _open_editor(page, base, seeded.dpia_id)
    return pages


async def _text(page: Any) -> str:
    """The field's text without the other people's caret labels."""
    text = await page.evaluate(
        """(selector) => {
            const copy = document.querySelector(selector).cloneNode(true);
            copy.querySelectorAll('.collaboration-carets__caret').forEach((c) => c.remove());
            return copy.textContent;
        }""",
        FIELD,
    )
    return str(text)


async def test_two_organisations_type_into_one_field_at_once_and_converge(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    camden, trust = await _editors(browser, site, "owner", "editor")
    await camden.locator(FIELD).click()
    await trust.locator(FIELD).click()
    typed = ["Camden outreach sees who slept out. ", "The trust sees who was treated. "]
    await asyncio.gather(
        camden.keyboard.type(typed[0], delay=15), trust.keyboard.type(typed[1], delay=15)
    )
    async with asyncio.timeout(30):  # both converge on one text that lost no keystroke
        while (final := await _text(camden)) != await _text(trust) or not keeps_every_keystroke(
            final, typed
        ):
            await asyncio.sleep(0.05)
    stored = await YClient.connect(live.url(seeded.dpia_id, role=Role.VIEWER))
    try:
        server_text = str(stored.doc.get("field:need.aims", type=XmlFragment))
        assert keeps_every_keystroke(server_text, typed)
    finally:
        await stored.close()
    # Each sees the other's named caret.
    await camden.wait_for_selector(".collaboration-carets__label:has-text('Editor Person')")
    await trust.wait_for_selector(".collaboration-carets__label:has-text('Olive Owner')")
    await keep_screenshot(camden, "editor-camden.png", full_page=False)
    await keep_screenshot(trust, "editor-trust.png", full_page=False)


async def test_a_reload_shows_the_saved_content(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.emails["owner"])
    said: list[str] = []
    page.on(
        "console",
        lambda message: (
            said.append(f"{message.type}: {message.text}")
            if message.type in ("warning", "error")
            else None
        ),
    )
    await _open_editor(page, base, seeded.dpia_id)
    await page.locator(FIELD).click()
    await page.keyboard.type("Kept after a reload.")
    await page.wait_for_selector('#save-state[data-state="saved"]')
    await page.reload()
    await _open_editor(page, base, seeded.dpia_id)
    await page.wait_for_function(CONTAINS, arg=[FIELD, ["Kept after a reload."]])
    # Fields of another section get their editors once the first ones have linked text.
    await page.locator('a.section-link[data-section="processing"]').click()
    await page.wait_for_selector('[data-field="processing.nature"] .ProseMirror')
    assert said == [], said  # the editor loads, twice, without a console warning or error


async def test_a_viewer_cannot_edit_and_a_forced_write_is_dropped(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.emails["viewer"])
    await _open_editor(page, base, seeded.dpia_id)
    assert await page.locator(FIELD).get_attribute("contenteditable") == "false"

    # Force a write past the UI: a raw y-websocket update sent with the viewer's cookie.
    forged: Doc[Any] = Doc()
    forged.get("field:need.aims", type=XmlFragment)
    forged.get("forced", type=Text).insert(0, "written by a viewer")
    update = forged.get_update()
    frame = list(b"\x00\x02" + write_var_uint(len(update)) + update)
    answer = await page.evaluate(
        """([url, frame]) => new Promise((resolve) => {
            const ws = new WebSocket(url);
            ws.binaryType = 'arraybuffer';
            ws.onopen = () => ws.send(new Uint8Array(frame));
            ws.onmessage = (event) => {
                const bytes = new Uint8Array(event.data);
                if (bytes[0] === 2) { resolve(Array.from(bytes)); ws.close(); }
            };
            setTimeout(() => resolve(null), 5000);
        })""",
        [f"ws://127.0.0.1:{live.port}/ws/dpia/{seeded.dpia_id}", frame],
    )
    assert answer is not None, "the viewer was not told its write was dropped"
    assert "Read-only" in bytes(answer[3:]).decode()
    check = await YClient.connect(live.url(seeded.dpia_id, role=Role.EDITOR))
    try:
        assert str(check.doc.get("forced", type=Text)) == ""
    finally:
        await check.close()


async def test_no_accessibility_violations_on_any_page(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    # axe is injected as a script, which the app's Content-Security-Policy rightly forbids.
    page = await sign_in(browser, base, seeded.emails["owner"], bypass_csp=True)
    found = {}
    pages = (
        ("dashboard", "/dpias"),
        ("new", "/dpias/new"),
        ("participants", f"/dpias/{seeded.dpia_id}/participants"),
        ("notifications", "/notifications"),
        ("inbound", f"/dpias/{seeded.dpia_id}/inbound"),
        ("forgot-password", "/forgot-password"),
        ("editor", f"/dpias/{seeded.dpia_id}"),
    )
    for name, path in pages:
        if name == "editor":
            await _open_editor(page, base, seeded.dpia_id)
        else:
            await page.goto(base + path)
        found[name] = await audit(page, f"axe-{name}")
    assert found == {name: [] for name, _ in pages}, json.dumps(found, indent=1)


async def test_a_commenter_posts_from_the_editor_and_an_editor_sees_it_live(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    commenter, editor = await _editors(browser, site, "commenter", "editor")
    await commenter.locator("#comment-form textarea").fill("<b>Is R1</b> still open?")
    await commenter.locator('[data-action="post-comment"]').click()
    comment = editor.locator("#comment-list li.comment", has_text="<b>Is R1</b> still open?")
    await comment.wait_for()
    assert await editor.locator("#comment-list li.comment b").count() == 0  # text, not markup
    assert await commenter.locator("#comment-error").is_hidden() or not (
        await commenter.locator("#comment-error").inner_text()
    )


async def test_a_personal_link_opens_the_dpia_read_only_without_an_account(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    link = read_link(live, seeded.emails["commenter"])
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(base + link)
    await page.locator('a.section-link[data-section="need"]').click()
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    assert await page.locator(FIELD).get_attribute("contenteditable") == "false"
    assert await page.locator("#notifications-link").count() == 0  # not signed in
    await keep_screenshot(page, "read-only-link.png")
    forged = await (await browser.new_context()).new_page()
    response = await forged.goto(base + link[:-3] + "xyz")
    assert response is not None and response.status == 401


@pytest.fixture
def small_fields(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    """The site with fields capped at 2 KiB, so that a paste can pass the cap."""
    with seeded_server(sqlite_url, max_field_bytes=2048) as served:
        yield served


async def test_a_change_over_the_field_cap_is_refused_and_the_editor_says_why(
    small_fields: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = small_fields
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.emails["owner"])
    await _open_editor(page, base, seeded.dpia_id)
    await page.locator(FIELD).click()
    await page.keyboard.insert_text("A long paste. " * 300)
    refusal = page.locator("#refusal")
    await refusal.wait_for(state="visible")
    assert "over the limit" in (await refusal.inner_text())
    assert await page.locator("#connection-state").get_attribute("data-state") == "connected"
    await keep_screenshot(page, "editor-refused.png", full_page=False)
    check = await YClient.connect(live.url(seeded.dpia_id, role=Role.VIEWER))
    try:
        assert "A long paste." not in str(check.doc.get("field:need.aims", type=XmlFragment))
    finally:
        await check.close()
