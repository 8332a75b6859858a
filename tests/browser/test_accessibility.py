"""Every page, in every state the browser tests reach, meets WCAG 2.2 AA at desktop and
phone widths: axe finds nothing and nothing scrolls sideways at 320 px (tests/browser/a11y.py
says what is checked, and when a screenshot is kept).

Each state is reached once and audited at both widths (the page is resized between the two
audits, as a phone turned or a window narrowed would), by one browser with one sign-in per
person: reaching the states is most of the sweep's cost, and was paid twice when each width
had its own server, browser and walk (decision 150)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.browser.a11y import DESKTOP, audit_at_each_width, read_link, unsubscribe_path
from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import PASSWORD, Site, prepare, seed_site, signed_in

pytestmark = pytest.mark.asyncio

ADMIN = "admin@camden.example"
FIELD = '[data-field="need.aims"] .ProseMirror'


@pytest.fixture
def development(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    """The site in development (so /dev/mail exists), with an administrator, small fields
    (so that a paste is refused and the editor shows why) and a signed-off section."""
    prepare(sqlite_url)
    seeded = asyncio.run(seed_site(sqlite_url))
    settings = replace(make_settings(sqlite_url), env="development", max_field_bytes=2048)
    with serving(settings) as live:
        live.call(
            live.runtime.accounts.create_user(ADMIN, "Ada Admin", PASSWORD, "CAM", admin=True)
        )
        live.call(_sign_off_a_section(live, seeded))
        yield live, seeded


async def _sign_off_a_section(live: LiveServer, seeded: Site) -> None:
    from pycrdt import XmlFragment

    from server.domain.templates import append_paragraphs
    from tests.support.yclient import YClient

    base, dpia = f"http://127.0.0.1:{live.port}", seeded.dpia_id
    writer = await YClient.connect(live.url(dpia, saved=True))
    await writer.synced.wait()
    append_paragraphs(writer.doc.get("field:need.aims", type=XmlFragment), ["Find people sooner"])
    await writer.wait_saved()
    await writer.close()
    clients = {r: await signed_in(base, seeded.emails[r]) for r in ("editor", "dpo")}
    try:
        for role, path, body in (
            ("editor", "sections", {"section": "need", "step": "submit"}),
            ("dpo", "sections", {"section": "need", "step": "review"}),
            ("dpo", "signoffs", {"kind": "section", "target": "need", "decision": "approve"}),
        ):
            client = clients[role]
            response = await client.post(
                f"/api/dpias/{dpia}/{path}",
                json=body,
                headers={"x-csrftoken": client.cookies["csrftoken"]},
            )
            assert response.status_code == 200, response.text
    finally:
        for client in clients.values():
            await client.aclose()


async def _new_page(browser: Any) -> Any:
    # axe is injected as a script, which the app's Content-Security-Policy rightly forbids.
    context = await browser.new_context(viewport=DESKTOP, bypass_csp=True)
    return await context.new_page()


async def _sign_in(page: Any, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#password").press("Enter")
    await page.wait_for_url(f"{base}/projects")


async def _editor(page: Any, base: str, dpia: str, section: str) -> None:
    await page.goto(f"{base}/dpias/{dpia}#{section}")
    await page.wait_for_selector(f'section.dpia-section[data-section="{section}"]')
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    await page.wait_for_selector('#save-state:not([data-state="connecting"])')


@pytest.mark.timeout(600)
async def test_every_page_passes_axe_and_reflows_at_desktop_and_phone_widths(
    development: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = development
    base = f"http://127.0.0.1:{live.port}"
    dpia = seeded.dpia_id
    found: dict[str, list[str]] = {}

    async def check(page: Any, name: str) -> None:
        for width, problems in (await audit_at_each_width(page, name)).items():
            found[f"{name}-{width}"] = problems

    anonymous = await _new_page(browser)
    for name, path in (
        ("accessibility", "/accessibility"),
        ("privacy", "/privacy"),
        ("sign-in", "/login"),
        ("forgot-password", "/forgot-password"),
        ("not-found-signed-out", "/no-such-page"),
    ):
        await anonymous.goto(base + path)
        await check(anonymous, name)
    await anonymous.goto(f"{base}/login")
    await anonymous.locator("#email").fill(seeded.emails["owner"])
    await anonymous.locator("#password").fill("not the password")
    await anonymous.locator("#password").press("Enter")
    await anonymous.wait_for_selector(".error-summary")
    await check(anonymous, "sign-in-error")
    await anonymous.goto(f"{base}/forgot-password")
    await anonymous.locator("#email").fill(seeded.emails["viewer"])
    await anonymous.locator("#email").press("Enter")
    await anonymous.wait_for_selector("text=Check your email")
    await check(anonymous, "forgot-password-sent")

    admin = await _new_page(browser)
    await _sign_in(admin, base, ADMIN)
    await admin.goto(f"{base}/dev/mail")
    async with asyncio.timeout(15):
        while await admin.locator("a", has_text="Set a new password").count() == 0:
            await admin.reload()
    await check(admin, "dev-mail")
    await admin.locator("a", has_text="Set a new password").first.click()
    await admin.wait_for_selector("pre.mail-text")
    await check(admin, "dev-mail-message")
    text = await admin.locator("pre.mail-text").inner_text()
    reset = re.search(r"/reset-password/[A-Za-z0-9_-]+", text)
    assert reset, text
    await anonymous.goto(base + reset.group(0))
    await check(anonymous, "reset-password")
    await anonymous.locator("#password").fill("a long new password")
    await anonymous.locator("#confirmation").fill("another long password")
    await anonymous.locator("#confirmation").press("Enter")
    await anonymous.wait_for_selector(".error-summary")
    await check(anonymous, "reset-password-error")
    await admin.goto(f"{base}/admin/mail")
    await check(admin, "admin-mail")
    await admin.goto(f"{base}/admin/organisations/CAM/sign-in")
    await check(admin, "sign-in-settings")
    await admin.locator("#issuer").evaluate("(input) => input.form.noValidate = true")
    await admin.locator("#domains").fill("camden.example")
    await admin.locator("#issuer").fill("not an address")
    await admin.locator("#issuer").press("Enter")
    await admin.wait_for_selector(".error-summary")
    await check(admin, "sign-in-settings-error")
    await anonymous.goto(f"{base}/login")
    await anonymous.locator("#email").fill("someone@nowhere.example")
    await anonymous.locator("#email").press("Enter")
    await anonymous.wait_for_selector(".error-summary")
    await check(anonymous, "sign-in-asks-for-the-password")
    await anonymous.goto(f"{base}/login/oidc/callback?state=forged&code=x")
    await check(anonymous, "sign-in-refused")
    # The organisation's administration (issue 15; tests/browser/test_administration.py
    # walks it, and a deployment administrator's pages, at both widths).
    for name, path in (
        ("admin-organisations", "/admin/organisations"),
        ("admin-people", "/admin/organisations/CAM/people"),
        ("admin-dpias", "/admin/organisations/CAM/dpias"),
        ("admin-audit", "/admin/organisations/CAM/audit"),
    ):
        await admin.goto(base + path)
        await check(admin, name)
    await admin.goto(f"{base}/admin/organisations/CAM/people")
    await admin.get_by_role("link", name="Olive Owner").click()
    await admin.get_by_role("button", name="Suspend Olive Owner").click()
    await admin.wait_for_selector("text=Suspend Olive Owner?")
    await check(admin, "admin-confirm-suspend")
    for name, path in (
        ("retention", "/admin/organisations/CAM/retention"),
        ("subject-access", "/admin/subject-access"),
        ("subject-access-unknown", "/admin/subject-access?email=nobody%40nowhere.example"),
        ("erase-confirm", f"/admin/erase?email={ADMIN}"),
    ):
        await admin.goto(base + path)
        await check(admin, name)
    await admin.goto(f"{base}/admin/organisations/CAM/retention")
    await admin.locator("#months").fill("700")
    await admin.locator("#months").press("Enter")
    await admin.wait_for_selector(".error-summary")
    await check(admin, "retention-error")
    await anonymous.goto(base + read_link(live, seeded.emails["commenter"]))
    await anonymous.wait_for_selector('#connection-state[data-state="connected"]')
    await check(anonymous, "read-only-link")
    await anonymous.goto(base + unsubscribe_path(live, seeded.emails["viewer"]))
    await check(anonymous, "unsubscribe")
    await anonymous.get_by_role("button", name="Stop these emails").click()
    await anonymous.wait_for_selector("text=You are unsubscribed")
    await check(anonymous, "unsubscribed")

    owner = await _new_page(browser)
    await _sign_in(owner, base, seeded.emails["owner"])
    for name, path in (
        ("dashboard", "/dpias"),
        ("dashboard-filtered", "/dpias?q=nothing+like+this"),
        ("new-dpia", "/dpias/new"),
        ("participants", f"/dpias/{dpia}/participants"),
        ("workflow", f"/dpias/{dpia}/workflow"),
        ("history", f"/dpias/{dpia}/history"),
        ("version", f"/dpias/{dpia}/versions/1?compare=1"),
        ("sign-off-diff", f"/dpias/{dpia}/signoffs/1"),
        ("import", "/dpias/import"),
        ("notifications", "/notifications"),
        ("inbound", f"/dpias/{dpia}/inbound"),
        ("accessibility-signed-in", "/accessibility"),
        ("delete-dpia", f"/dpias/{dpia}/delete"),
        ("erase", "/admin/erase"),
        ("not-found", "/dpias/DPIA-NOPE-1"),
    ):
        await owner.goto(base + path)
        await check(owner, name)
    await owner.goto(f"{base}/dpias/new")
    await owner.locator("#title").evaluate("(input) => input.form.noValidate = true")
    await owner.locator("#title").press("Enter")
    await owner.wait_for_selector(".error-summary")
    await check(owner, "new-dpia-error")
    await owner.goto(f"{base}/dpias/import")
    await owner.locator("#file").set_input_files(
        files=[{"name": "x.json", "mimeType": "application/json", "buffer": b"not json"}]
    )
    await owner.get_by_role("button", name="Import as a new draft").click()
    await owner.wait_for_selector(".error-summary")
    await check(owner, "import-error")
    # Projects (issue 16): the dashboard, a new project, a project's page and its errors.
    project = "PRJ-" + dpia.removeprefix("DPIA-")
    for name, path in (
        ("projects", "/projects"),
        ("projects-filtered", "/projects?step=generate_ideas"),
        ("new-project", "/projects/new"),
        ("project", f"/projects/{project}"),
    ):
        await owner.goto(base + path)
        await check(owner, name)
    await owner.goto(f"{base}/projects/new")
    await owner.locator("#title").evaluate("(input) => input.form.noValidate = true")
    await owner.locator("#title").press("Enter")
    await owner.wait_for_selector(".error-summary")
    await check(owner, "new-project-error")
    await owner.locator("#title").fill("Accessible project")
    await owner.get_by_role("button", name="Create project").click()
    await owner.wait_for_url(re.compile(r"/projects/PRJ-CAM-\d+-\d+$"))
    await check(owner, "project-at-its-idea")
    await owner.locator("#person-email").evaluate("(input) => input.form.noValidate = true")
    await owner.locator("#person-email").fill("not an address")
    await owner.locator("#person-email").press("Enter")
    await owner.wait_for_selector(".error-summary")
    await check(owner, "project-error")

    await owner.goto(f"{base}/dpias/{dpia}/workflow")
    # The page offers only the steps the owner may take; the refusal a stale page or a
    # crafted form meets is shown by asking for the DPO's step on a section.
    step = owner.locator("select[name=step]").first
    await step.evaluate("(select) => select.add(new Option('Review', 'review', true, true))")
    await owner.locator("form:has(select[name=step]) button[type=submit]").first.click()
    await owner.wait_for_selector("[role=alert]")
    await check(owner, "workflow-error")
    await owner.goto(f"{base}/dpias/{dpia}/participants")
    await owner.locator("#invite-email").evaluate("(input) => input.form.noValidate = true")
    await owner.locator("#invite-email").fill("not an address")
    await owner.locator("#invite-email").press("Enter")
    await owner.wait_for_selector("[role=alert]")
    await check(owner, "participants-error")

    await _editor(owner, base, dpia, "need")
    await check(owner, "editor")
    await owner.locator("#comment-form textarea").fill("Which records does the partner hold?")
    await owner.locator('[data-action="post-comment"]').click()
    comment = owner.locator("#comment-list > li.comment").first
    await comment.wait_for()
    await comment.get_by_role("button", name="Reply").click()
    await check(owner, "editor-comment-reply-open")
    await _editor(owner, base, dpia, "risks")
    await owner.locator('[data-action="add-row"]').click()
    await owner.wait_for_selector(".row-card")
    await check(owner, "editor-risk-register")
    await _editor(owner, base, dpia, "need")
    await owner.locator(FIELD).click()
    await owner.keyboard.insert_text("A long paste. " * 300)
    await owner.locator("#refusal").wait_for(state="visible")
    await check(owner, "editor-refused")

    problems = {name: found[name] for name in found if found[name]}
    assert problems == {}, json.dumps(problems, indent=1)
