"""The searchable library on a real server, on SQLite and PostgreSQL (issue 17): the
matching passage, only documents the person takes part in (the access check is in the
query, before the limit), an edit over a real WebSocket becoming searchable, the filters,
hostile text escaped, and no query or filter that makes a 500."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import XmlFragment

from server.domain.search import PAGE_SIZE
from server.domain.templates import append_paragraphs
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.search import HOSTILE, Library, seed_library
from tests.support.site import prepare, signed_in
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
def library(database_url: str) -> Iterator[tuple[LiveServer, Library]]:
    prepare(database_url)
    seeded = asyncio.run(seed_library(database_url))
    settings = make_settings(database_url, search_index_delay_seconds=0.2)
    with serving(settings) as live:
        yield live, seeded


async def _ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


async def _until_found(client: httpx.AsyncClient, document_id: str, **params: str) -> None:
    """Wait until a search finds the document (the index catches up after a commit)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while document_id not in await _ids(client, **params):
            await asyncio.sleep(0.05)


def _base(live: LiveServer) -> str:
    return f"http://127.0.0.1:{live.port}"


async def test_search_shows_the_matching_passage_of_only_the_documents_one_takes_part_in(
    library: tuple[LiveServer, Library],
) -> None:
    live, seeded = library
    ann = await signed_in(_base(live), seeded.ann)
    oscar = await signed_in(_base(live), seeded.oscar)
    try:
        await _until_found(ann, seeded.visible, q="discharge summaries")
        await _until_found(oscar, seeded.secret[0], q="discharge summaries")
        # More documents Ann does not take part in match better than hers than a page
        # holds: had the access check come after the limit, she would find nothing.
        assert len(seeded.secret) > PAGE_SIZE
        found = await _ids(ann, q="discharge summaries")
        assert found == [seeded.visible]
        assert set(await _ids(oscar, q="discharge summaries")) <= set(seeded.secret)
        assert seeded.visible not in await _ids(oscar, q="discharge summaries")

        page = await ann.get("/search", params={"q": "discharge summaries"})
        assert page.status_code == 200
        passage = re.search(r'<p class="passage">(.*?)</p>', page.text, re.S)
        assert passage, page.text
        assert re.search(r"<mark>discharge</mark>\s*<mark>summaries</mark>", passage.group(1))
        assert "to plan home care" in passage.group(1)
        for secret in seeded.secret:
            assert secret not in page.text

        response = await ann.get("/api/search", params={"q": "discharge summaries"})
        result = response.json()["results"][0]
        assert "discharge summaries with the borough" in result["passage"]
        assert {"text": "discharge", "match": True} in result["passage_runs"]
        # A risk in the register and a word of the idea's answers are found too.
        await _until_found(ann, seeded.risky, q="reidentify")
        await _until_found(ann, seeded.idea, q="delayed")
    finally:
        await ann.aclose()
        await oscar.aclose()


async def test_an_edit_and_a_comment_over_the_real_channels_become_searchable(
    library: tuple[LiveServer, Library],
) -> None:
    live, seeded = library
    ann = await signed_in(_base(live), seeded.ann)
    cookie = "; ".join(f"{k}={v}" for k, v in ann.cookies.items())
    socket = await websockets.connect(
        f"ws://127.0.0.1:{live.port}/ws/dpia/{seeded.visible}?saved=1",
        additional_headers={"cookie": cookie},
    )
    editor = await YClient.attach(socket)
    try:
        await editor.wait_synced()
        assert await _ids(ann, q="platypus") == []
        fragment = editor.doc.get("field:need.why_needed", type=XmlFragment)
        append_paragraphs(fragment, ["Because the platypus census needs it."])
        await editor.wait_saved()
        await _until_found(ann, seeded.visible, q="platypus census")

        posted = await ann.post(
            f"/api/dpias/{seeded.visible}/comments",
            json={"section": "need", "text": "Ask the wombat team about retention"},
            headers={"x-csrftoken": ann.cookies["csrftoken"]},
        )
        assert posted.status_code == 201, posted.text
        await _until_found(ann, seeded.visible, q="wombat")
        result = (await ann.get("/api/search", params={"q": "wombat"})).json()["results"][0]
        assert "wombat team" in result["passage"]
    finally:
        await editor.close()
        await ann.aclose()


async def test_filters_narrow_the_results(library: tuple[LiveServer, Library]) -> None:
    live, seeded = library
    ann = await signed_in(_base(live), seeded.ann)
    try:
        for document_id in (seeded.visible, seeded.risky, seeded.hostile, seeded.idea):
            await _until_found(ann, document_id, organisation=str(seeded.cam))
        assert await _ids(ann, status="in_force") == [seeded.risky]
        assert await _ids(ann, q="discharge", status="draft") == sorted(
            [seeded.visible, seeded.idea], key=[seeded.visible, seeded.idea].index
        ) or set(await _ids(ann, q="discharge", status="draft")) == {seeded.visible, seeded.idea}
        assert await _ids(ann, q="discharge", template="project-idea") == [seeded.idea]
        assert await _ids(ann, review="overdue") == [seeded.visible]
        assert seeded.risky not in await _ids(ann, review="soon")
        none = await _ids(ann, review="none")
        assert seeded.hostile in none and seeded.visible not in none
        assert await _ids(ann, organisation=str(seeded.nlft)) == []
        # Filters offered are those of her documents; a bad one is a clear 400, never a 500.
        page = await ann.get("/search", params={"q": "discharge", "status": "draft"})
        assert "North London NHS Foundation Trust" not in page.text
        for bad in ({"status": "nope"}, {"review": "x"}, {"organisation": "x1"}, {"page": "0"}):
            response = await ann.get("/api/search", params=bad)
            assert response.status_code == 400, (bad, response.text)
            assert (await ann.get("/search", params=bad)).status_code == 400
    finally:
        await ann.aclose()


async def test_hostile_text_is_shown_as_text_and_no_query_fails(
    library: tuple[LiveServer, Library],
) -> None:
    live, seeded = library
    ann = await signed_in(_base(live), seeded.ann)
    try:
        await _until_found(ann, seeded.hostile, q="quokka")
        for query in ("quokka", "gotcha", "onerror", "survey counts"):
            page = await ann.get("/search", params={"q": query})
            assert page.status_code == 200
            results = page.text[page.text.index('id="results"') :]
            assert "<script>" not in results and "<img" not in results and "<b>" not in results
        page = await ann.get("/search", params={"q": "quokka"})
        passage = re.search(r'<p class="passage">(.*?)</p>', page.text, re.S)
        assert passage
        # The markup someone wrote is shown as the text they wrote. (PostgreSQL's parser
        # reads "<script>"-like runs as tags and leaves them out of the passage: fine.)
        assert "onerror=alert(1)&gt; <mark>quokka</mark> sighting" in passage.group(1)
        assert HOSTILE.endswith(html.unescape(re.sub(r"</?mark>", "", passage.group(1))).strip())
        assert "Wildlife &lt;b&gt;survey&lt;/b&gt; &amp; &#34;counts&#34;" in page.text
        for query in ('"', "*", "NEAR(a b)", "a OR", "-x", "title:x", "x:*", "(((", "\\", "'"):
            response = await ann.get("/api/search", params={"q": query})
            assert response.status_code == 200, (query, response.text)
            assert (await ann.get("/search", params={"q": query})).status_code == 200
    finally:
        await ann.aclose()


async def test_the_search_box_on_the_projects_page_leads_to_the_results(
    library: tuple[LiveServer, Library],
) -> None:
    live, seeded = library
    ann = await signed_in(_base(live), seeded.ann)
    try:
        projects = await ann.get("/projects")
        form: Any = re.search(r'<form[^>]*id="library-search"[^>]*>', projects.text)
        assert form and 'action="/search"' in form.group(0)
        anonymous = httpx.AsyncClient(base_url=_base(live), timeout=WAIT_SECONDS)
        async with anonymous:
            assert (await anonymous.get("/api/search", params={"q": "x"})).status_code == 401
            assert (await anonymous.get("/search")).status_code in (302, 303, 307)
    finally:
        await ann.aclose()
