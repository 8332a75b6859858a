"""The editor opens a document of every step kind with its own template: every section of
that template is drawn, the document connects, and nothing fails in the page; the ISA shows
what it was drafted with."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.projects import DocumentKind
from server.domain.templates import load_template
from tests.browser.conftest import sign_in
from tests.support.live import LiveServer
from tests.support.site import Site

pytestmark = pytest.mark.asyncio


def start_every_step(live: LiveServer, site: Site) -> dict[DocumentKind, str]:
    runtime = live.runtime

    async def start() -> dict[DocumentKind, str]:
        owner = await runtime.accounts.user_by_email(site.emails["owner"])
        assert owner is not None
        project_id = await runtime.projects.create(owner, "Warm homes", owner.organisation_ids[0])
        view = await runtime.projects.view(owner, project_id)
        idea = view.current(DocumentKind.IDEA)
        assert idea is not None
        started = {DocumentKind.IDEA: idea.id}
        for kind in list(DocumentKind)[1:]:
            started[kind] = await runtime.usecases.projects.start_step(owner, project_id, kind)
        return started

    return live.call(start())


async def test_the_editor_draws_a_document_of_every_step_kind(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    documents = start_every_step(live, seeded)
    page = await sign_in(browser, base, seeded.emails["owner"])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for kind, document_id in documents.items():
        await page.goto(f"{base}/dpias/{document_id}")
        await page.wait_for_selector('#connection-state[data-state="connected"]')
        for section in load_template(kind.template_id).sections:
            # The editor draws one section at a time, the one the address names.
            await page.goto(f"{base}/dpias/{document_id}#{section['id']}")
            drawn = page.locator(f'section.dpia-section[data-section="{section["id"]}"]')
            await drawn.wait_for()
        assert errors == [], f"{kind.value}: {errors}"


async def test_the_isa_opens_with_the_parties_it_was_drafted_with(
    site: tuple[LiveServer, Site], browser: Any
) -> None:
    live, seeded = site
    base = f"http://127.0.0.1:{live.port}"
    isa = start_every_step(live, seeded)[DocumentKind.ISA]
    page = await sign_in(browser, base, seeded.emails["owner"])
    await page.goto(f"{base}/dpias/{isa}#parties")
    await page.wait_for_selector('#connection-state[data-state="connected"]')
    parties = page.locator('section.dpia-section[data-section="parties"]')
    await parties.get_by_text("London Borough of Camden").first.wait_for()
