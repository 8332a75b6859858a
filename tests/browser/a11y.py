"""What every page is checked for (WCAG 2.2 AA), for the browser tests that visit pages.

axe-core runs with the WCAG A and AA rule sets of 2.0, 2.1 and 2.2 (every impact, not only
serious ones: a minor violation is still a failure of the success criterion), the page must
not scroll sideways (1.4.10 reflow: at 320 CSS px nothing may need a horizontal scroll bar),
and a full-page screenshot of a page that fails is kept in the test artefacts, so a
reviewer can see what was found. With ``OPENDPIA_TEST_SCREENSHOTS=1`` every audited page
is kept (to look over them all): full-page screenshots were about 40 % of the audits' time.
"""

from __future__ import annotations

import os
from typing import Any

from tests.browser.conftest import AXE, keep_screenshot
from tests.support.live import LiveServer

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 320, "height": 640}

# Every rule of the tags runs on every node; only the violations are detailed and sent back.
# Detailing the passing nodes too (axe's default) and carrying that result over to the test
# made each audit two to three times slower, for results nothing reads.
AXE_VIOLATIONS = """async (tags) => {
    const result = await axe.run(
        document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.map((violation) => ({
        id: violation.id,
        impact: violation.impact,
        targets: violation.nodes.map((node) => node.target),
    }));
}"""

OVERFLOW = """() => {
    const root = document.scrollingElement;
    const wide = [];
    if (root.scrollWidth > root.clientWidth) {
        for (const node of document.querySelectorAll('body *')) {
            const box = node.getBoundingClientRect();
            if (box.right > root.clientWidth + 1 && box.width > 0) {
                wide.push(`${node.tagName.toLowerCase()}${node.id ? '#' + node.id : ''}`
                    + `${node.className && typeof node.className === 'string'
                        ? '.' + node.className.trim().split(/\\s+/).join('.') : ''}`
                    + ` right=${Math.round(box.right)}`);
            }
        }
    }
    return {scroll: root.scrollWidth, client: root.clientWidth, wide: wide.slice(0, 8)};
}"""


async def audit(page: Any, name: str) -> list[str]:
    """The problems on the page as it is now (empty when it passes); saves a screenshot."""
    problems: list[str] = []
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    violations = await page.evaluate(AXE_VIOLATIONS, WCAG_TAGS)
    for violation in violations:
        targets = violation["targets"][:4]
        problems.append(f"axe {violation['id']} ({violation['impact']}): {targets}")
    width = await page.evaluate(OVERFLOW)
    if width["scroll"] > width["client"]:
        problems.append(
            f"scrolls sideways: {width['scroll']}px wide in {width['client']}px: {width['wide']}"
        )
    if problems or os.environ.get("OPENDPIA_TEST_SCREENSHOTS") == "1":
        viewport = page.viewport_size or DESKTOP
        await keep_screenshot(page, f"a11y-{name}-{viewport['width']}.png", full_page=True)
    return problems


# Two animation frames: a resize's media-query listeners run before the first frame's
# callbacks, so after the second the page has reacted to its new width (no fixed wait).
NEXT_FRAMES = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
)


async def audit_at_each_width(page: Any, name: str) -> dict[int, list[str]]:
    """The problems on the page in its present state at desktop and at phone width, by
    width; the page is resized in place, so the state is reached once for both audits and
    the page is left at phone width."""
    found: dict[int, list[str]] = {}
    for viewport in (DESKTOP, PHONE):
        await page.set_viewport_size(viewport)
        await page.evaluate(NEXT_FRAMES)
        found[viewport["width"]] = await audit(page, name)
    return found


def participant_id(live: LiveServer, email: str) -> int:
    """The id of the participant with ``email`` (in the one DPIA of the site)."""
    from sqlalchemy import select

    from server.storage.models import Participant

    async def find() -> int | None:
        async with live.runtime.sessions() as session:
            found: int | None = await session.scalar(
                select(Participant.id).where(Participant.email == email)
            )
            return found

    found = live.call(find())
    assert found is not None
    return found


def read_link(live: LiveServer, email: str) -> str:
    """The path of the personal read-only link the participant with ``email`` is sent."""
    link = live.runtime.notifications.mail.read_link(participant_id(live, email))
    return "/r/" + link.split("/r/")[1]


def unsubscribe_path(live: LiveServer, email: str) -> str:
    """The path of the one-click unsubscribe link in the participant's emails."""
    mail = live.runtime.notifications.mail
    return f"/unsubscribe/{mail.unsubscribe_token(participant_id(live, email))}"
