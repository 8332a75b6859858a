"""The accessibility statement: readable by anyone, linked from every page, naming the
deploying organisation's contact; unknown addresses answer a page, not bare text."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.live import LiveServer
from tests.support.site import Site, seeded_server, signed_in

pytestmark = pytest.mark.asyncio

CONTACT = "accessibility@camden.example"
FOOTER = '<a href="/accessibility">Accessibility statement</a>'


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url, accessibility_contact=CONTACT) as served:
        yield served


async def test_anyone_reads_the_statement_with_the_contact_and_how_it_was_tested(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    base = f"http://127.0.0.1:{live.port}"
    async with httpx.AsyncClient(base_url=base) as anonymous:
        page = await anonymous.get("/accessibility")
        assert page.status_code == 200
        for words in (
            f'<a href="mailto:{CONTACT}">{CONTACT}</a>',
            "Equality and Human Rights Commission",
            "Equality Commission for Northern Ireland",
            "partially compliant",
            "320",
            "keyboard only",
            "PDF/UA-1",
            "This statement was prepared on",
        ):
            assert words in page.text, words
        assert "Sign out" not in page.text
        assert FOOTER in (await anonymous.get("/login")).text
        assert FOOTER in (await anonymous.get("/forgot-password")).text
    owner = await signed_in(base, site.emails["owner"])
    try:
        for path in ("/accessibility", "/dpias", f"/dpias/{site.dpia_id}/workflow"):
            page = await owner.get(path)
            assert page.status_code == 200 and FOOTER in page.text, path
        assert "Sign out" in (await owner.get("/accessibility")).text  # the signed-in header
    finally:
        await owner.aclose()


@pytest.fixture
def no_contact(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


async def test_without_a_contact_the_statement_sends_people_to_whoever_invited_them(
    no_contact: tuple[LiveServer, Site],
) -> None:
    live, _ = no_contact
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as anonymous:
        page = await anonymous.get("/accessibility")
    assert "mailto:" not in page.text
    assert "the organisation that invited you" in page.text


async def test_an_unknown_address_is_a_page_for_browsers_and_plain_for_other_clients(
    server: tuple[LiveServer, Site],
) -> None:
    live, _ = server
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as client:
        browser = await client.get("/no-such-page", headers={"accept": "text/html"})
        assert browser.status_code == 404
        assert '<html lang="en-GB">' in browser.text and FOOTER in browser.text
        plain = await client.get("/no-such-page")
        assert plain.status_code == 404 and plain.text == "Not Found"
        asset = await client.get("/static/no-such.css", headers={"accept": "text/html"})
        assert asset.status_code == 404 and asset.text == "Not Found"
