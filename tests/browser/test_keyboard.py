"""The main journey with the keyboard alone, and focus that stays visible and uncovered.

Only key presses move through the pages (Tab, Shift+Tab, Enter, arrow keys, typing): no
click, no ``fill``, no script that presses a button. ``page.goto`` opens the sign-in page,
once for each person.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.a11y import DESKTOP, PHONE
from tests.browser.conftest import artifact, keep_screenshot
from tests.support.live import LiveServer
from tests.support.site import PASSWORD, Site

pytestmark = pytest.mark.asyncio

FOCUSED = (
    "(selector) => document.activeElement !== null && document.activeElement.matches(selector)"
)


async def tab_to(page: Any, selector: str, *, backwards: bool = False, limit: int = 300) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches ``selector``."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(limit):
        await page.keyboard.press(key)
        if await page.evaluate(FOCUSED, selector):
            return
    raise AssertionError(f"{limit} presses of {key} never reached {selector}")


async def choose(page: Any, value: str) -> None:
    """Choose ``value`` in the focused <select> with the arrow keys."""
    await page.keyboard.press("Home")
    for _ in range(40):
        if await page.evaluate("() => document.activeElement.value") == value:
            return
        await page.keyboard.press("ArrowDown")
    raise AssertionError(f"the focused list has no option {value!r}")


async def sign_in_by_keyboard(browser: Any, base: str, email: str) -> Any:
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await tab_to(page, "#email")
    await page.keyboard.type(email)
    await tab_to(page, "#password")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/projects")
    return page


async def _follow(page: Any, selector: str, url: str, *, backwards: bool = False) -> None:
    await tab_to(page, selector, backwards=backwards)
    await page.keyboard.press("Enter")
    await page.wait_for_url(url)


async def _apply_section_step(page: Any, step: str, state: str) -> None:
    """On the workflow page: choose ``step`` for section "need", apply it, see ``state``."""
    await tab_to(page, "#step-need")
    await choose(page, step)
    await tab_to(page, "form:has(#step-need) button[type=submit]")
    await page.keyboard.press("Enter")
    row = page.locator("tr", has=page.locator('a[href$="/history?section=need"]'))
    await row.locator(f".state-{state}").wait_for()


async def test_the_main_journey_works_with_the_keyboard_alone(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    owner = await sign_in_by_keyboard(browser, base, seeded.emails["owner"])

    # Create a DPIA.
    await _follow(owner, 'a[href="/dpias/new"]', f"{base}/dpias/new")
    await tab_to(owner, "#title")
    await owner.keyboard.type("Keyboard journey")
    await tab_to(owner, 'form[action="/dpias/new"] button[type=submit]')
    await owner.keyboard.press("Enter")
    await owner.wait_for_url(re.compile(r"/dpias/DPIA-[A-Z]+-\d+-\d+$"))
    dpia = owner.url.rsplit("/", 1)[1]
    await owner.wait_for_selector('#connection-state[data-state="connected"]')

    # Write in a field of section 1.
    await tab_to(owner, 'a.section-link[data-section="need"]')
    await owner.keyboard.press("Enter")
    await owner.wait_for_selector('section.dpia-section[data-section="need"]')
    await tab_to(owner, '[data-field="need.aims"] .ProseMirror')
    await owner.keyboard.type("Help people sleeping rough into housing sooner.")
    await owner.wait_for_selector('#save-state[data-state="saved"]')

    # Comment on it.
    await tab_to(owner, "#comment-form textarea")
    await owner.keyboard.type("Does this cover people in hostels?")
    await tab_to(owner, '[data-action="post-comment"]')
    await owner.keyboard.press("Enter")
    await owner.locator("#comment-list li.comment", has_text="people in hostels").wait_for()

    # Invite the DPO, who signs off.
    participants = f"{base}/dpias/{dpia}/participants"
    await _follow(owner, f'a[href="/dpias/{dpia}/participants"]', participants, backwards=True)
    await tab_to(owner, "#invite-email")
    await owner.keyboard.type(seeded.emails["dpo"])
    await tab_to(owner, "#invite-role")
    await choose(owner, "dpo")
    await tab_to(owner, "form:has(#invite-email) button[type=submit]")
    await owner.keyboard.press("Enter")
    await owner.locator("td", has_text=seeded.emails["dpo"]).wait_for()

    # Send the section for review.
    await _follow(owner, f'a[href="/dpias/{dpia}"]', f"{base}/dpias/{dpia}")
    await _follow(owner, f'a[href="/dpias/{dpia}/workflow"]', f"{base}/dpias/{dpia}/workflow")
    await _apply_section_step(owner, "submit", "submitted")

    # The DPO reviews it and signs it off.
    dpo = await sign_in_by_keyboard(browser, base, seeded.emails["dpo"])
    # Signing in lands on the projects; the DPIA is among the DPO's documents.
    await _follow(dpo, 'a[href="/dpias"]', f"{base}/dpias")
    await _follow(dpo, f'a[href="/dpias/{dpia}"]', f"{base}/dpias/{dpia}")
    await _follow(dpo, f'a[href="/dpias/{dpia}/workflow"]', f"{base}/dpias/{dpia}/workflow")
    await _apply_section_step(dpo, "review", "reviewed")
    await tab_to(dpo, "#kind")
    await choose(dpo, "section")
    await tab_to(dpo, "#target")
    await choose(dpo, "need")
    await tab_to(dpo, "#decision")
    await choose(dpo, "approve")
    await tab_to(dpo, "form:has(#decision) button[type=submit]")
    await dpo.keyboard.press("Enter")
    await dpo.locator("table.signoffs td", has_text="Dpo Person").wait_for()

    # And exports the record.
    await tab_to(dpo, f'a[href="/dpias/{dpia}/export.pdf"]')
    async with dpo.expect_download() as downloading:
        await dpo.keyboard.press("Enter")
    download = await downloading.value
    path = artifact("keyboard-journey.pdf")
    await download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")
    await keep_screenshot(dpo, "keyboard-journey-signed.png", full_page=True)


# Whether the focused element is the one seen at the centre of its box (2.4.11), and shows
# a focus indicator: an outline or ring of its own, or the ring of the rich-text box around
# it (2.4.7).
FOCUS_STATE = """() => {
    const el = document.activeElement;
    if (el === null || el === document.body) return null;
    const box = el.getBoundingClientRect();
    const x = box.left + box.width / 2, y = box.top + box.height / 2;
    const inView = y >= 0 && y < window.innerHeight && x >= 0 && x < window.innerWidth;
    const hit = inView ? document.elementFromPoint(x, y) : null;
    const label = hit && hit.closest('label');
    const seen = !inView ? false
        : hit === el || el.contains(hit) || (label !== null && label.contains(el));
    const ringed = (node) => {
        const style = getComputedStyle(node);
        return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
            || style.boxShadow !== 'none';
    };
    const frame = el.closest('.rich-text');
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (typeof el.className === 'string' && el.className
            ? '.' + el.className.split(' ')[0] : '');
    return {name, inView, seen, covering: hit && !seen ? hit.tagName + '.' + hit.className : '',
            ringed: ringed(el) || (frame !== null && ringed(frame))};
}"""


async def test_focus_in_the_editor_is_visible_and_never_under_the_sticky_header(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in_by_keyboard(browser, base, seeded.emails["owner"])
    await page.set_viewport_size({"width": 1280, "height": 600})  # short: the page scrolls
    await page.goto(f"{base}/dpias/{seeded.dpia_id}#processing")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    await tab_to(page, '[data-action="add-row"]')
    await page.keyboard.press("Enter")  # a row of controls, so that there is much to tab past
    await page.wait_for_selector(".row-card")
    problems: list[str] = []
    seen = 0
    for key in ["Shift+Tab"] * 90 + ["Tab"] * 90:
        await page.keyboard.press(key)
        state = await page.evaluate(FOCUS_STATE)
        if state is None:
            continue
        seen += 1
        if not state["seen"]:
            problems.append(f"{key} to {state['name']}: covered by {state['covering']}")
        if not state["ringed"]:
            problems.append(f"{key} to {state['name']}: no visible focus indicator")
    assert seen > 100
    assert problems == [], "\n".join(dict.fromkeys(problems))


async def test_on_a_phone_the_menu_and_the_section_list_fold_and_open_from_the_keyboard(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    page = await sign_in_by_keyboard(browser, base, seeded.emails["owner"])
    # Wide, the menu is simply there, without a Menu button.
    assert await page.locator("#notifications-link").is_visible()
    assert not await page.locator("details.site-menu > summary").is_visible()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{base}/dpias/{seeded.dpia_id}")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    menu = page.locator("details.site-menu")
    sections = page.locator("details.sidebar-details")
    # Both folded: the links inside are not shown until asked for.
    assert not await page.locator("#notifications-link").is_visible()
    assert not await page.locator('a.section-link[data-section="need"]').is_visible()
    await tab_to(page, "details.site-menu > summary")
    await page.keyboard.press("Enter")
    assert await menu.get_attribute("open") is not None
    await tab_to(page, "#notifications-link")
    await tab_to(page, "details.sidebar-details > summary")
    assert "Screening" in await page.locator(".sidebar-summary").inner_text()
    await page.keyboard.press("Enter")
    await tab_to(page, 'a.section-link[data-section="need"]')
    await page.keyboard.press("Enter")
    await page.wait_for_selector('section.dpia-section[data-section="need"]')
    assert await sections.get_attribute("open") is None  # folded again once chosen
    assert "1. Need" in await page.locator(".sidebar-summary").inner_text()
    await keep_screenshot(page, "phone-editor-menus.png")
