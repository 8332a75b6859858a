"""What the pages show beyond axe's rules: targets big enough to hit (2.5.8), nothing that
needs dragging (2.5.7), no "Empty" before the document has loaded, and printing that
prints the whole DPIA without the menus, panels and buttons around it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycrdt import XmlFragment

from server.domain.templates import append_paragraphs, load_template
from tests.browser.a11y import DESKTOP, PHONE
from tests.browser.conftest import artifact, sign_in
from tests.support.live import LiveServer
from tests.support.site import Site
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

# Every target's size, with WCAG 2.5.8's exceptions: a link inline in a sentence, and a
# smaller target whose 24 px circle, centred on it, meets no other target (or its circle).
TARGETS = """() => {
    const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
        + '[role=button], [tabindex]:not([tabindex="-1"]):not(.ProseMirror)';
    const visible = [...document.querySelectorAll(selector)].filter((el) => {
        const box = el.getBoundingClientRect();
        return box.width > 1 && box.height > 1 && box.right > 0
            && el.checkVisibility({visibilityProperty: true, opacityProperty: true});
    });
    const centre = (box) => [box.left + box.width / 2, box.top + box.height / 2];
    const inSentence = (el) => el.tagName === 'A' && getComputedStyle(el).display === 'inline'
        && el.parentElement.textContent.trim() !== el.textContent.trim();
    const distanceToBox = ([x, y], box) => Math.hypot(
        Math.max(box.left - x, 0, x - box.right), Math.max(box.top - y, 0, y - box.bottom));
    const small = [];
    for (const el of visible) {
        const box = el.getBoundingClientRect();
        if ((box.width >= 24 && box.height >= 24) || inSentence(el)) continue;
        const c = centre(box);
        const crowded = visible.some((other) => {
            if (other === el || other.contains(el) || el.contains(other)) return false;
            const ob = other.getBoundingClientRect();
            const otherSmall = ob.width < 24 || ob.height < 24;
            return otherSmall ? Math.hypot(c[0] - centre(ob)[0], c[1] - centre(ob)[1]) < 24
                : distanceToBox(c, ob) < 12;
        });
        if (crowded) small.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} `
            + `"${(el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 30)}" `
            + `${Math.round(box.width)}x${Math.round(box.height)}`);
    }
    return small;
}"""


async def _editor(page: Any, base: str, dpia: str, section: str) -> None:
    await page.goto(f"{base}/dpias/{dpia}#{section}")
    await page.wait_for_selector(f'section.dpia-section[data-section="{section}"]')
    await page.wait_for_selector('#connection-state[data-state="connected"]')


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_every_target_is_24_px_or_spaced_and_nothing_needs_dragging(
    site: tuple[LiveServer, Site], browser: Any, viewport: dict[str, int]
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    page = await sign_in(browser, base, seeded.emails["owner"])
    await page.set_viewport_size(viewport)
    found: dict[str, list[str]] = {}
    for name, path in (
        ("dashboard", "/dpias"),
        ("participants", f"/dpias/{dpia}/participants"),
        ("workflow", f"/dpias/{dpia}/workflow"),
        ("notifications", "/notifications"),
        ("new", "/dpias/new"),
        ("import", "/dpias/import"),
        ("history", f"/dpias/{dpia}/history"),
        ("version", f"/dpias/{dpia}/versions/1"),
        ("inbound", f"/dpias/{dpia}/inbound"),
        ("accessibility", "/accessibility"),
    ):
        await page.goto(base + path)
        found[name] = await page.evaluate(TARGETS)
        await page.evaluate(
            "() => document.querySelectorAll('details').forEach((d) => d.open = true)"
        )
        found[f"{name}-opened"] = await page.evaluate(TARGETS)
    for section in ("need", "risks"):
        await _editor(page, base, dpia, section)
        if section == "risks":
            await page.locator('[data-action="add-row"]').press("Enter")
            await page.wait_for_selector(".row-card")
        found[f"editor-{section}"] = await page.evaluate(TARGETS)
        # 2.5.7: nothing is moved by dragging, so nothing offers to be dragged.
        draggable = await page.locator('[draggable="true"]').count()
        assert draggable == 0, f"{draggable} draggable elements in the editor"
    problems = {name: small for name, small in found.items() if small}
    assert problems == {}, json.dumps(problems, indent=1)


EMPTY_WATCH = """
window.__emptyBeforeSync = [];
new MutationObserver(() => {
    const synced = window.opendpia?.connection?.provider?.synced === true;
    if (synced) return;
    for (const status of document.querySelectorAll('.section-status')) {
        if (status.textContent.includes('Empty')) {
            window.__emptyBeforeSync.push(status.closest('a')?.dataset.section ?? '?');
        }
    }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


async def test_no_section_says_empty_before_the_document_has_loaded(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    writer = await YClient.connect(live.url(seeded.dpia_id, saved=True))
    await writer.synced.wait()
    append_paragraphs(writer.doc.get("field:need.aims", type=XmlFragment), ["Find people"])
    await writer.wait_saved()
    await writer.close()
    page = await sign_in(browser, base, seeded.emails["owner"])
    await page.add_init_script(EMPTY_WATCH)
    await _editor(page, base, seeded.dpia_id, "need")
    need = page.locator('a.section-link[data-section="need"] .section-status')
    await need.filter(has_text="In progress").wait_for()
    assert await page.evaluate("() => window.__emptyBeforeSync") == []
    # After the sync, an empty section does say so.
    empty = page.locator('a.section-link[data-section="consultation"] .section-status')
    assert await empty.inner_text() == "Empty"


HIDDEN = """(selectors) => selectors.filter((s) => [...document.querySelectorAll(s)]
    .some((el) => getComputedStyle(el).display !== 'none'))"""


async def test_printing_prints_the_whole_dpia_and_not_the_chrome(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    sections = [s["id"] for s in load_template().content["sections"]]
    page = await sign_in(browser, base, seeded.emails["owner"])
    await _editor(page, base, dpia, "need")
    shown = """() => [...document.querySelectorAll('.dpia-main > .dpia-section')]
        .map((s) => s.dataset.section)"""
    assert await page.evaluate(shown) == ["need"]
    await page.emulate_media(media="print")
    await page.wait_for_function(
        f"() => document.querySelectorAll('.dpia-main > .dpia-section').length === {len(sections)}"
    )
    assert await page.evaluate(shown) == sections
    chrome = [
        ".site-header",
        ".site-footer",
        ".page-links",
        ".sidebar",
        ".comments",
        ".toolbar",
        ".presence",
        ".status-bar",
        "button",
    ]
    assert await page.evaluate(HIDDEN, chrome) == []
    await page.pdf(path=artifact("print-editor.pdf"))
    await page.emulate_media(media="screen")
    await page.wait_for_function(
        "() => document.querySelectorAll('.dpia-main > .dpia-section').length === 1"
    )

    await page.goto(f"{base}/dpias/{dpia}/versions/1")
    await page.emulate_media(media="print")
    assert (
        await page.evaluate(
            HIDDEN, [".site-header", ".site-footer", ".page-links", "form", "button"]
        )
        == []
    )
    headings = await page.locator("main section h2").count()
    assert headings == len(sections)
    await page.pdf(path=artifact("print-version.pdf"))
