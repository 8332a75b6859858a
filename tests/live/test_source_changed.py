"""The ISA drafted from the DPIA, over real HTTP and WebSockets: a DPIA edit makes the ISA
show "source changed" with the difference and who should look, its sign-off goes stale, and
confirming on the sources page clears the notice (owners and editors only)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pycrdt import XmlFragment

from server.domain.projects import DocumentKind
from server.domain.templates import append_paragraphs
from tests.support.live import WAIT_SECONDS, LiveServer
from tests.support.site import Site, csrf_field, seeded_server, session_socket

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url, change_quiet_seconds=0.2) as served:
        yield served


async def write_rights(live: LiveServer, site: Site, client: httpx.AsyncClient, text: str) -> None:
    socket = await session_socket(live.port, site.dpia_id, client)
    try:
        await socket.wait_synced()
        fragment = socket.doc.get("field:necessity.rights", type=XmlFragment)
        append_paragraphs(fragment, [text])
        await socket.wait_saved()
    finally:
        await socket.close()


def start_isa(live: LiveServer, site: Site) -> str:
    runtime = live.runtime

    async def start() -> str:
        owner = await runtime.accounts.user_by_email(site.emails["owner"])
        dpo = await runtime.accounts.user_by_email(site.emails["dpo"])
        assert owner is not None and dpo is not None
        project_id = await runtime.projects.project_of(site.dpia_id)
        assert project_id is not None
        isa_id = await runtime.usecases.projects.start_step(owner, project_id, DocumentKind.ISA)
        # The DPO's organisation is a party of the agreement, so its DPO can approve it.
        await runtime.dpias.add_party(
            owner, isa_id, "joint_controller", organisation_id=dpo.organisation_ids[0]
        )
        return isa_id

    return live.call(start())


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers={"x-csrftoken": client.cookies["csrftoken"]})


async def test_a_dpia_edit_shows_on_the_isa_stales_its_sign_off_and_confirm_clears_it(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    owner, dpo = clients["owner"], clients["dpo"]
    await write_rights(live, site, owner, "Camden answers every request")
    isa = start_isa(live, site)
    editor_page = await owner.get(f"/dpias/{isa}")
    assert editor_page.status_code == 200 and "Source changed" not in editor_page.text
    assert '"id": "uk-isa"' in editor_page.text.replace("&#34;", '"')
    signed = await post(
        dpo, f"/api/dpias/{isa}/signoffs", {"kind": "party_approval", "decision": "approve"}
    )
    assert signed.status_code == 200, signed.text
    assert [s["state"] for s in signed.json()["signoffs"]] == ["valid"]

    await write_rights(live, site, owner, "Each borough answers its own residents")
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            state = (await dpo.get(f"/api/dpias/{isa}/workflow")).json()
            if [s["state"] for s in state["signoffs"]] == ["stale"]:
                break
            await asyncio.sleep(0.1)

    notice = (await owner.get(f"/dpias/{isa}")).text
    assert "Source changed: 1 answer" in notice
    assert f'href="/dpias/{isa}/sources"' in notice
    sources = await owner.get(f"/dpias/{isa}/sources")
    assert sources.status_code == 200
    assert "+Each borough answers its own residents" in sources.text
    assert "Who should look: Olive Owner, Dpo Person." in sources.text
    assert "edited by Olive Owner" in sources.text

    viewer = await clients["viewer"].get(f"/dpias/{isa}/sources")
    assert viewer.status_code == 200 and "still fits</button>" not in viewer.text
    refused = await clients["viewer"].post(
        f"/dpias/{isa}/sources",
        data={"csrftoken": csrf_field(viewer.text), "field": "rights.rights"},
    )
    assert refused.status_code == 403

    confirmed = await owner.post(
        f"/dpias/{isa}/sources",
        data={"csrftoken": csrf_field(sources.text), "field": "rights.rights"},
    )
    assert confirmed.status_code == 303, confirmed.text
    after = (await owner.get(confirmed.headers["location"])).text
    assert "Source changed" not in after and "Confirmed" in after
    assert "Source changed" not in (await owner.get(f"/dpias/{isa}")).text
    state = (await dpo.get(f"/api/dpias/{isa}/workflow")).json()
    assert [s["state"] for s in state["signoffs"]] == ["stale"]  # the signer re-confirms


async def test_confirming_a_field_that_was_not_drafted_is_a_clear_error(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    isa = start_isa(live, site)
    page = await clients["owner"].get(f"/dpias/{isa}/sources")
    assert "No field of this document was drafted" in page.text
    response = await clients["owner"].post(
        f"/dpias/{isa}/sources",
        data={"csrftoken": csrf_field(page.text), "field": "legal.gateways"},
    )
    assert response.status_code == 400
    assert "was not drafted from another document" in response.text


async def write(
    live: LiveServer, client: httpx.AsyncClient, document_id: str, path: str, text: str
) -> None:
    socket = await session_socket(live.port, document_id, client)
    try:
        await socket.wait_synced()
        append_paragraphs(socket.doc.get(f"field:{path}", type=XmlFragment), [text])
        await socket.wait_saved()
    finally:
        await socket.close()


async def test_fill_empty_fields_takes_later_answers_of_step_1_and_overwrites_nothing(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    runtime, owner = live.runtime, clients["owner"]

    async def start() -> tuple[str, str]:
        user = await runtime.accounts.user_by_email(site.emails["owner"])
        assert user is not None
        project_id = await runtime.projects.create(user, "Warm homes", user.organisation_ids[0])
        idea = (await runtime.projects.view(user, project_id)).current(DocumentKind.IDEA)
        assert idea is not None
        dpia = await runtime.usecases.projects.start_step(user, project_id, DocumentKind.DPIA)
        return idea.id, dpia

    idea, dpia = live.call(start())
    await write(live, owner, idea, "outcome.outcome", "No cold homes this winter")
    await write(live, owner, idea, "action.actors", "Energy advisers")
    await write(live, owner, dpia, "need.processing_type", "Our own words")

    page = await owner.get(f"/dpias/{dpia}")
    assert "Fill empty fields from earlier steps</button>" in page.text
    filled = await owner.post(f"/dpias/{dpia}/prefill", data={"csrftoken": csrf_field(page.text)})
    assert filled.status_code == 303 and filled.headers["location"].endswith("?filled=1")
    assert "Filled 1 empty field" in (await owner.get(filled.headers["location"])).text
    content = live.call(runtime.history.current(dpia)).content

    def lines(field: str) -> list[str]:
        return ["".join(r["text"] for r in node["content"]) for node in content["need"][field]]

    assert lines("aims") == ["No cold homes this winter"]
    assert lines("processing_type") == ["Our own words"]
    again = await owner.post(f"/dpias/{dpia}/prefill", data={"csrftoken": csrf_field(page.text)})
    assert again.headers["location"].endswith("?filled=0")
