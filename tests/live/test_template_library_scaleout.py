"""The template library across processes on PostgreSQL and Redis: a template published
through one process is used by another that started before it (which fills its registry
from the database), and a DPIA moved to a new version through one process has its open
editor on the other accept the new version's fields at once (its room follows the move)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import httpx
import pytest
from pycrdt import Map

from tests.browser.test_administration import _grant
from tests.support.redisproc import RedisProcess
from tests.support.scaleout import processes
from tests.support.site import csrf_field, seed_site, session_socket, signed_in

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres, pytest.mark.slow]
TEMPLATE = "/admin/organisations/CAM/templates/cam-cameras"


async def _post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    page = await client.get(path)
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


async def test_a_template_published_on_one_process_is_used_and_moved_to_on_another(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    await _grant(database, site.emails["owner"])  # administers CAM
    async with processes(2, database, redis_server, tmp_path) as (one, other):
        on_one = await signed_in(f"http://127.0.0.1:{one.port}", site.emails["owner"])
        on_other = await signed_in(f"http://127.0.0.1:{other.port}", site.emails["owner"])
        socket = None
        try:
            made = await _post(
                on_one, "/admin/organisations/CAM/templates", title="Cameras", source="uk-dpia"
            )
            assert made.headers["location"] == TEMPLATE
            assert (await _post(on_one, TEMPLATE, action="publish")).status_code == 303

            new = await on_other.get("/dpias/new")
            assert "Cameras, version 1 (your organisation" in new.text, re.findall(
                r"<option[^<]*", new.text
            )
            created = await on_other.post(
                "/dpias/new",
                data={
                    "csrftoken": csrf_field(new.text),
                    "title": "Cameras in the market",
                    "lead": re.findall(r'<option value="(\d+)"', new.text)[0],
                    "template": "cam-cameras",
                },
            )
            assert created.status_code == 303, created.text
            dpia_path = created.headers["location"]
            dpia_id = dpia_path.rsplit("/", 1)[1]
            assert "“Cameras”, version 1." in (await on_other.get(dpia_path)).text
            socket = await session_socket(other.port, dpia_id, on_other)

            assert (await _post(on_one, TEMPLATE, action="edit")).status_code == 303
            page = (await on_one.get(TEMPLATE)).text
            found = re.search(r'<textarea id="template-content"[^>]*>(.*?)</textarea>', page, re.S)
            assert found
            second = json.loads(html.unescape(found.group(1)))
            second["sections"].append(
                {
                    "id": "cameras",
                    "title": "The cameras",
                    "fields": [{"id": "count", "label": "How many", "kind": "number"}],
                }
            )
            saved = await _post(on_one, TEMPLATE, action="save", content=json.dumps(second))
            assert saved.status_code == 303, saved.text
            assert (await _post(on_one, TEMPLATE, action="publish")).status_code == 303

            preview = await on_one.get(f"{dpia_path}/template")
            assert "Sections added</h3><ul><li>The cameras<" in preview.text
            moved = await on_one.post(
                f"{dpia_path}/template",
                data={"csrftoken": csrf_field(preview.text), "version": "2", "confirm": "yes"},
            )
            assert moved.status_code == 303, moved.text
            await socket.wait_until(
                lambda: socket.doc.get("meta", type=Map).get("template_version") == 2
            )
            # The other process's room follows version 2: the new field is accepted there.
            socket.doc.get("values", type=Map)["cameras.count"] = 12
            await socket.wait_saved()
            assert not socket.denied, socket.denied
            assert socket.close_code is None
            assert "version 2." in (await on_other.get(dpia_path)).text
        finally:
            if socket is not None:
                await socket.close()
            await on_one.aclose()
            await on_other.aclose()
