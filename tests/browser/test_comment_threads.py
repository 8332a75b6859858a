"""Replying to and resolving a comment in the editor, seen live in another browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.a11y import audit
from tests.browser.conftest import keep_screenshot, sign_in
from tests.support.live import LiveServer
from tests.support.site import Site

pytestmark = pytest.mark.asyncio

QUESTION = "Is the retention period agreed with records management?"
ANSWER = "Yes: six years, agreed on 3 March."


async def _open(browser: Any, site: tuple[LiveServer, Site], role: str, **options: Any) -> Any:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in(browser, base, seeded.emails[role], **options)
    await page.goto(f"{base}/dpias/{seeded.dpia_id}#need")
    await page.locator('a.section-link[data-section="need"]').click()
    await page.wait_for_selector("#comments-panel")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    return page


async def test_a_reply_and_a_resolution_in_one_editor_appear_live_in_another(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    commenter = await _open(browser, site, "commenter")
    # The editor's page runs axe at the end, which the app's CSP rightly forbids injecting.
    editor = await _open(browser, site, "editor", bypass_csp=True)

    await commenter.locator("#comment-form textarea").fill(QUESTION)
    await commenter.locator('[data-action="post-comment"]').click()
    mine = commenter.locator("#comment-list > li.comment", has_text=QUESTION)
    theirs = editor.locator("#comment-list > li.comment", has_text=QUESTION)
    await theirs.wait_for()

    # The editor replies with the keyboard only: Reply opens a labelled field, Tab, Enter.
    await theirs.get_by_role("button", name="Reply").focus()
    await editor.keyboard.press("Enter")
    field = theirs.get_by_label("Reply to Commenter Person")
    assert await field.evaluate("(node) => node === document.activeElement")
    await editor.keyboard.type("Draft that survives a redraw")
    # Someone else's comment redraws the list: the open draft and its focus stay.
    await commenter.locator("#comment-form textarea").fill("Another point")
    await commenter.locator('[data-action="post-comment"]').click()
    await editor.locator("#comment-list > li.comment", has_text="Another point").wait_for()
    assert await field.input_value() == "Draft that survives a redraw"
    assert await field.evaluate("(node) => node === document.activeElement")
    await field.fill(ANSWER)
    await editor.keyboard.press("Tab")
    await editor.keyboard.press("Enter")

    # The commenter sees the reply under their comment without reloading.
    reply = mine.locator("ol.comment-replies > li.comment-reply", has_text=ANSWER)
    await reply.wait_for()
    assert "Editor Person" in await reply.inner_text()
    await field.wait_for(state="hidden")  # the form closes once the reply is posted

    # The commenter resolves their own comment; the editor sees it collapsed and marked.
    await mine.get_by_role("button", name="Resolve").click()
    collapsed = editor.locator("#comment-list > li.comment.is-collapsed", has_text="Is the")
    await collapsed.wait_for()
    assert "Resolved by Commenter Person" in await collapsed.inner_text()
    assert await collapsed.locator("ol.comment-replies").count() == 0  # the thread is folded
    await commenter.locator("#comment-list > li.is-collapsed").first.wait_for()
    await keep_screenshot(commenter, "comment-thread-resolved.png", full_page=True)

    # It can be shown again, with its replies, and reopened by the editor.
    show = collapsed.get_by_role("button", name="Show resolved comment")
    assert await show.get_attribute("aria-expanded") == "false"
    await show.click()
    shown = editor.locator("#comment-list > li.comment.is-resolved", has_text=QUESTION)
    await shown.locator("li.comment-reply", has_text=ANSWER).wait_for()
    await keep_screenshot(editor, "comment-thread-shown.png", full_page=True)
    # A resolved thread shown again, with its replies: the whole page meets WCAG 2.2 AA.
    assert await audit(editor, "comment-thread-shown") == []
    await shown.get_by_role("button", name="Reopen").click()
    await mine.locator(".comment-resolved").wait_for(state="detached")
    assert await mine.get_by_role("button", name="Resolve").is_visible()
    assert await mine.locator("li.comment-reply", has_text=ANSWER).is_visible()
    await keep_screenshot(commenter, "comment-thread-reopened.png", full_page=True)


async def test_a_commenter_sees_no_resolve_button_on_someone_else_s_comment(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    editor = await _open(browser, site, "editor")
    commenter = await _open(browser, site, "commenter")
    await editor.locator("#comment-form textarea").fill("The editor's own point")
    await editor.locator('[data-action="post-comment"]').click()
    theirs = commenter.locator("#comment-list > li.comment", has_text="The editor's own point")
    await theirs.wait_for()
    assert await theirs.get_by_role("button", name="Reply").is_visible()
    assert await theirs.get_by_role("button", name="Resolve").count() == 0
    viewer = await _open(browser, site, "viewer")
    seen = viewer.locator("#comment-list > li.comment", has_text="The editor's own point")
    await seen.wait_for()
    assert await seen.get_by_role("button").count() == 0  # a viewer reads, nothing more
