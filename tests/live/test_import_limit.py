"""One import limit: an export under it imports from the page and the API, one over it is a
413 that names the limit; every other request keeps the small body limit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from server.settings import Settings
from tests.support.live import LiveServer
from tests.support.site import Site, csrf_field, seeded_server

pytestmark = pytest.mark.asyncio

LIMIT = Settings().import_max_bytes


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


def _with_long_aims(export: bytes, characters: int) -> bytes:
    data = json.loads(export)
    paragraph = {"type": "paragraph", "content": [{"text": "a" * characters}]}
    data["content"]["need"]["aims"] = [paragraph]
    return json.dumps(data, indent=2).encode()


async def _api_import(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/api/dpias/import?lead=1",
        content=body,
        headers={"x-csrftoken": client.cookies["csrftoken"], "content-type": "application/json"},
    )


async def test_a_300_kib_export_re_imports_from_the_api_and_the_page(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    small = (await owner.get(f"/dpias/{dpia_id}/export.json")).content
    created = await _api_import(owner, _with_long_aims(small, 300 * 1024))
    assert created.status_code == 201, created.text
    export = (await owner.get(f"/dpias/{created.json()['id']}/export.json")).content
    assert len(export) > 300 * 1024

    again = await _api_import(owner, export)
    assert again.status_code == 201, again.text
    form = await owner.get("/dpias/import")
    from_page = await owner.post(
        "/dpias/import",
        data={"csrftoken": csrf_field(form.text), "lead": "1"},
        files={"file": ("dpia.json", export, "application/json")},
    )
    assert from_page.status_code == 303, from_page.text
    copy = from_page.headers["location"].rsplit("/", 1)[1]
    assert (await owner.get(f"/dpias/{copy}/export.json")).content == export


async def test_an_export_over_the_limit_is_413_naming_the_limit_on_both_routes(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    small = (await owner.get(f"/dpias/{dpia_id}/export.json")).content
    base = len(_with_long_aims(small, 0))
    for size in (LIMIT + 1 - base, LIMIT + 100 * 1024):
        # One byte over (the page's handler refuses it) and well over (refused as it arrives).
        big = _with_long_aims(small, size)
        assert len(big) > LIMIT
        refused = await _api_import(owner, big)
        assert refused.status_code == 413, (size, refused.text)
        assert "larger than 4 MiB" in refused.text and "OPENDPIA_IMPORT_MAX_BYTES" in refused.text
        form = await owner.get("/dpias/import")
        from_page = await owner.post(
            "/dpias/import",
            data={"csrftoken": csrf_field(form.text), "lead": "1"},
            files={"file": ("dpia.json", big, "application/json")},
        )
        assert from_page.status_code == 413, (size, from_page.text[:300])
        assert "larger than 4 MiB" in from_page.text


async def test_other_requests_keep_the_small_body_limit(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    dpia_id = server[1].dpia_id
    comment = await owner.post(
        f"/api/dpias/{dpia_id}/comments",
        content=json.dumps({"section": "need", "text": "a" * 300 * 1024}).encode(),
        headers={"x-csrftoken": owner.cookies["csrftoken"], "content-type": "application/json"},
    )
    assert comment.status_code == 413
    assert comment.text.startswith("The request is larger than 256 KiB")
