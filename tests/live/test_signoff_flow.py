"""Review, sign-off and an approved DPIA's immutability over real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from pycrdt import XmlFragment

from server.domain.access import Role
from server.domain.comments import NewComment
from server.domain.errors import DpiaLocked
from server.domain.templates import append_paragraphs
from tests.support.approval import TO_APPROVAL, fill, post, review_all
from tests.support.live import WAIT_SECONDS, LiveServer, issue_token
from tests.support.site import Site, csrf_field, seeded_server
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url, change_quiet_seconds=0.2) as served:
        yield served


async def _ws(live: LiveServer, dpia_id: str, client: httpx.AsyncClient) -> YClient:
    import websockets

    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    websocket = await websockets.connect(
        f"ws://127.0.0.1:{live.port}/ws/dpia/{dpia_id}?saved=1",
        additional_headers={"cookie": cookie},
        max_size=None,
    )
    client_ = await YClient.attach(websocket)
    await client_.synced.wait()
    return client_


async def test_an_edit_after_sign_off_goes_stale_and_the_signer_is_told(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia = site.dpia_id
    owner = await _ws(live, dpia, clients["owner"])
    try:
        fill(owner.doc)
        await owner.wait_saved()
        await review_all(clients, dpia)
        signed = await post(
            clients["dpo"],
            f"/api/dpias/{dpia}/signoffs",
            {"kind": "section", "target": "need", "decision": "approve"},
        )
        assert signed.status_code == 200, signed.text
        [record] = signed.json()["signoffs"]
        assert (record["state"], record["signer"], record["role"]) == ("valid", "Dpo Person", "dpo")

        append_paragraphs(owner.doc.get("field:need.aims", type=XmlFragment), ["and more data"])
        await owner.wait_saved()
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                state = (await clients["dpo"].get(f"/api/dpias/{dpia}/workflow")).json()
                notes = (await clients["dpo"].get("/notifications")).text
                if state["signoffs"][0]["state"] == "stale" and "after your sign-off" in notes:
                    break
                await asyncio.sleep(0.1)
        diff = await clients["dpo"].get(f"/api/dpias/{dpia}/signoffs/{record['id']}/diff")
        assert [c["field"] for c in diff.json()["changes"]] == ["need.aims"]
        page = await clients["dpo"].get(f"/dpias/{dpia}/workflow")
        assert "Stale: changed since signed" in page.text
        again = await post(
            clients["dpo"], f"/api/dpias/{dpia}/signoffs/{record['id']}/reconfirm", {}
        )
        assert [s["state"] for s in again.json()["signoffs"]] == ["superseded", "valid"]
    finally:
        await owner.close()


async def test_an_approved_dpia_refuses_writes_on_every_channel_and_can_be_versioned(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia = site.dpia_id
    editor = await _ws(live, dpia, clients["editor"])
    try:
        fill(editor.doc)
        await editor.wait_saved()
        await review_all(clients, dpia)
        for role, path, body in TO_APPROVAL:
            response = await post(clients[role], f"/api/dpias/{dpia}/{path}", body)
            assert response.status_code == 200, (role, path, response.text)
        assert response.json()["status"] == "approved"

        # Browser: the connected editor's write is dropped and they are told why.
        append_paragraphs(editor.doc.get("field:need.aims", type=XmlFragment), ["too late"])
        await editor.wait_until(lambda: any("approved" in d for d in editor.denied))
        fresh = await _ws(live, dpia, clients["owner"])
        assert "too late" not in str(fresh.doc.get("field:need.aims", type=XmlFragment))
        await fresh.close()
        # API: comments from a session and from a token are refused with a clear 409.
        comment = await post(
            clients["commenter"], f"/api/dpias/{dpia}/comments", {"section": "need", "text": "hi"}
        )
        assert comment.status_code == 409 and "new version" in comment.json()["error"]
        token = issue_token(live.settings, dpia, Role.EDITOR)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{live.port}", timeout=WAIT_SECONDS
        ) as api:
            by_token = await api.post(
                f"/api/dpias/{dpia}/comments",
                json={"section": "need", "text": "hi"},
                headers={"authorization": f"Bearer {token}"},
            )
        assert by_token.status_code == 409
        # Email: replies reach the document through the same room service, which refuses.
        reply = NewComment(
            "need", None, "Reply by email", None, "Ed", "email", "email:ed@x.example"
        )
        with pytest.raises(DpiaLocked, match="approved"):
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(
                    live.runtime.editing.add_comment(dpia, reply, origin="email:test"),
                    live.loop,  # type: ignore[arg-type]
                )
            )
        restore = await post(
            clients["owner"], f"/api/dpias/{dpia}/restore", {"field": "need.aims", "seq": 1}
        )
        assert restore.status_code == 409

        # A new version starts from it, editable, and supersedes it once approved.
        new_page = await clients["owner"].get(f"/dpias/new?origin={dpia}")
        created = await clients["owner"].post(
            "/dpias/new",
            data={
                "csrftoken": csrf_field(new_page.text),
                "title": "Shared DPIA v2",
                "lead": "1",
                "origin": dpia,
            },
        )
        assert created.status_code == 303, created.text
        successor = created.headers["location"].rsplit("/", 1)[1]
        writer = await _ws(live, successor, clients["owner"])
        assert "About need.aims" in str(writer.doc.get("field:need.aims", type=XmlFragment))
        append_paragraphs(writer.doc.get("field:need.aims", type=XmlFragment), ["v2 change"])
        await writer.wait_saved()
        assert not writer.denied
        await writer.close()
    finally:
        await editor.close()


async def test_history_shows_who_did_what_and_a_field_restores_as_a_new_change(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    dpia = site.dpia_id
    owner = await _ws(live, dpia, clients["owner"])
    try:
        aims = owner.doc.get("field:need.aims", type=XmlFragment)
        append_paragraphs(aims, ["First aim"])
        await owner.wait_saved()
        first = (await clients["owner"].get(f"/api/dpias/{dpia}/workflow")).json()["seq"]
        append_paragraphs(aims, ["Second aim"])
        await owner.wait_saved()
        comment = await post(
            clients["commenter"],
            f"/api/dpias/{dpia}/comments",
            {"section": "need", "text": "Why a second aim?"},
        )
        assert comment.status_code == 201

        items = (await clients["viewer"].get(f"/api/dpias/{dpia}/history?section=need")).json()
        edits = [i for i in items["items"] if i["kind"] == "edit"]
        assert edits and edits[0]["actor"] == "Olive Owner" and "need.aims" in edits[0]["fields"]
        assert any(
            i["kind"] == "comment"
            and i["actor"] == "Commenter Person"
            and i["channel"] == "browser"
            for i in items["items"]
        )
        everything = (await clients["viewer"].get(f"/api/dpias/{dpia}/history")).json()["items"]
        assert any(i["kind"] == "invitation" and "Dpo Person" in i["summary"] for i in everything)

        old = (await clients["viewer"].get(f"/api/dpias/{dpia}/versions/{first}")).json()
        assert old["content"]["need"]["aims"] == [
            {"type": "paragraph", "content": [{"text": "First aim"}]}
        ]
        denied = await post(
            clients["viewer"], f"/api/dpias/{dpia}/restore", {"field": "need.aims", "seq": first}
        )
        assert denied.status_code == 403
        restored = await post(
            clients["editor"], f"/api/dpias/{dpia}/restore", {"field": "need.aims", "seq": first}
        )
        assert restored.status_code == 200 and restored.json()["changed"]
        await owner.wait_until(lambda: "Second aim" not in str(aims))
        assert str(aims) == "<paragraph>First aim</paragraph>"
        history = (await clients["owner"].get(f"/api/dpias/{dpia}/history")).json()["items"]
        assert history[0]["kind"] in ("restore", "edit")
        assert any(i["kind"] == "restore" and i["actor"] == "Editor Person" for i in history)
        for path in (
            f"/dpias/{dpia}/history",
            f"/dpias/{dpia}/history?section=need",
            f"/dpias/{dpia}/versions/{first}?compare={first + 1}",
            f"/dpias/{dpia}/workflow",
        ):
            page = await clients["viewer"].get(path)
            assert page.status_code == 200, path
        exported = await clients["viewer"].get(f"/dpias/{dpia}/export.pdf")
        assert exported.status_code == 200 and exported.content.startswith(b"%PDF")
    finally:
        await owner.close()


async def test_a_json_export_imports_from_the_page_into_an_equal_dpia(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    owner = clients["owner"]
    writer = await _ws(live, site.dpia_id, owner)
    try:
        fill(writer.doc)
        await writer.wait_saved()
    finally:
        await writer.close()
    exported = await owner.get(f"/dpias/{site.dpia_id}/export.json")
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].endswith('.json"')
    form = await owner.get("/dpias/import")
    created = await owner.post(
        "/dpias/import",
        data={"csrftoken": csrf_field(form.text), "lead": "1"},
        files={"file": ("dpia.json", exported.content, "application/json")},
    )
    assert created.status_code == 303, created.text
    copy = created.headers["location"].rsplit("/", 1)[1]
    assert copy != site.dpia_id
    again = await owner.get(f"/dpias/{copy}/export.json")
    assert again.content == exported.content
    refused = await owner.post(
        "/dpias/import",
        data={"csrftoken": csrf_field(form.text), "lead": "1"},
        files={"file": ("x.json", b'{"format": "something else"}', "application/json")},
    )
    assert refused.status_code == 400 and "not an OpenDPIA" in refused.text
    forged = await owner.post(
        "/dpias/import",
        data={"csrftoken": "forged", "lead": "1"},
        files={"file": ("dpia.json", exported.content, "application/json")},
    )
    assert forged.status_code == 403
