"""A checkout without the built editor still serves pages: the editor page says how to build
it, and its files are a clean 404."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import LiveServer, make_settings, serving
from tests.support.site import Site, prepare, seed_site, seeded_server, signed_in

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["absent", "empty"])
def server(
    request: pytest.FixtureRequest, sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, Site]]:
    bundle = tmp_path / "dist"
    if request.param == "empty":
        bundle.mkdir()
    with seeded_server(sqlite_url, editor_dir=str(bundle)) as served:
        yield served


async def test_without_the_bundle_the_editor_page_says_to_build_it_and_its_files_are_404(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    owner = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["owner"])
    try:
        page = await owner.get(f"/dpias/{site.dpia_id}")
        assert page.status_code == 200
        assert "The editor bundle is not built" in page.text
        assert "make setup" in page.text
        assert "/static/editor/editor.js" not in page.text
        for name in ("editor.js", "editor.css", "nested/chunk.js"):
            asset = await owner.get(f"/static/editor/{name}")
            assert asset.status_code == 404, name
            assert "make setup" in asset.text or asset.text == "Not Found", name
        # Everything else carries on.
        assert (await owner.get("/dpias")).status_code == 200
        assert (await owner.get("/static/app.css")).status_code == 200
    finally:
        await owner.aclose()


async def test_with_the_bundle_the_editor_page_loads_it(sqlite_url: str, tmp_path: Path) -> None:
    bundle = tmp_path / "dist"
    bundle.mkdir()
    (bundle / "editor.js").write_text("export {};\n")
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_site(sqlite_url)
    with serving(make_settings(sqlite_url, editor_dir=str(bundle))) as live:
        owner = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["owner"])
        try:
            page = await owner.get(f"/dpias/{site.dpia_id}")
            assert "/static/editor/editor.js" in page.text
            assert "not built" not in page.text
            assert (await owner.get("/static/editor/editor.js")).text == "export {};\n"
        finally:
            await owner.aclose()
