"""A request nobody should send gets a 4xx that says what was wrong, never a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import Site, csrf_field, prepare, seed_site, signed_in

pytestmark = pytest.mark.asyncio

# Deeper than any export needs and than Python's parser takes; within the 64 KiB API limit.
DEEP = 20_000


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    prepare(sqlite_url)
    site = asyncio.run(seed_site(sqlite_url))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site


@pytest_asyncio.fixture
async def owner(server: tuple[LiveServer, Site]) -> AsyncIterator[httpx.AsyncClient]:
    live, site = server
    client = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["owner"])
    try:
        yield client
    finally:
        await client.aclose()


def _json_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"x-csrftoken": client.cookies["csrftoken"], "content-type": "application/json"}


async def test_deeply_nested_json_is_refused_with_400_on_import_and_the_api(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    nested = b"[" * DEEP + b"]" * DEEP
    in_an_export = b'{"format": "opendpia-dpia", "content": ' + nested + b"}"

    api_import = await owner.post(
        "/api/dpias/import?lead=1", content=in_an_export, headers=_json_headers(owner)
    )
    assert api_import.status_code == 400, api_import.text
    assert api_import.json()["error"].startswith("The JSON is nested more than")

    form = await owner.get("/dpias/import")
    page_import = await owner.post(
        "/dpias/import",
        data={"csrftoken": csrf_field(form.text), "lead": "1"},
        files={"file": ("deep.json", in_an_export, "application/json")},
    )
    assert page_import.status_code == 400, page_import.text
    assert "The JSON is nested more than" in page_import.text

    comment = await owner.post(
        f"/api/dpias/{dpia_id}/comments",
        content=b'{"section": "need", "text": "hi", "x": ' + nested + b"}",
        headers=_json_headers(owner),
    )
    assert comment.status_code == 400, comment.text
    assert comment.json()["error"].startswith("The JSON is nested more than")
