"""Pages, the comments API and the WebSocket for every role, over real HTTP."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from pycrdt import Map

from server.domain.access import Role
from tests.support.live import WAIT_SECONDS, LiveServer, issue_token
from tests.support.site import (
    Site,
    csrf_field,
    seeded_server,
    session_socket,
    signed_in,
)
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

REFERENCE = "outcome.ico_reference"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as served:
        yield served


@pytest_asyncio.fixture
async def clients(
    server: tuple[LiveServer, Site],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    live, site = server
    base = f"http://127.0.0.1:{live.port}"
    signed = {role: await signed_in(base, email) for role, email in site.emails.items()}
    signed["anonymous"] = httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS)
    try:
        yield signed
    finally:
        for client in signed.values():
            await client.aclose()


async def test_sign_in_without_the_csrf_token_is_refused(server: tuple[LiveServer, Site]) -> None:
    live, site = server
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{live.port}", timeout=WAIT_SECONDS
    ) as client:
        response = await client.post(
            "/login", data={"email": site.emails["owner"], "password": "correct horse battery"}
        )
    assert response.status_code == 403
    assert "opendpia_session" not in response.cookies


async def test_behind_a_proxy_that_terminates_tls_the_editor_connects_over_wss(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    """A proxy's X-Forwarded-Proto is believed from OPENDPIA_FORWARDED_ALLOW_IPS (by default
    127.0.0.1, where these requests come from): an HTTPS page must not offer ws://."""
    live, site = server
    page = f"/dpias/{site.dpia_id}"
    direct = (await clients["editor"].get(page)).text
    proxied = (await clients["editor"].get(page, headers={"x-forwarded-proto": "https"})).text
    assert f"&#34;ws://127.0.0.1:{live.port}/ws/dpia&#34;" in direct
    assert f"&#34;wss://127.0.0.1:{live.port}/ws/dpia&#34;" in proxied


async def test_anonymous_visitors_are_sent_to_sign_in(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    response = await clients["anonymous"].get("/dpias")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/dpias"


async def test_every_participant_sees_the_dpia_and_an_outsider_gets_404(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    dpia_id = server[1].dpia_id
    for role in ("owner", "editor", "commenter", "viewer", "dpo"):
        dashboard = await clients[role].get("/dpias")
        assert dpia_id in dashboard.text, role
        assert (await clients[role].get(f"/dpias/{dpia_id}")).status_code == 200, role
    outsider = clients["outsider"]
    assert dpia_id not in (await outsider.get("/dpias")).text
    for path in (f"/dpias/{dpia_id}", f"/dpias/{dpia_id}/participants", "/dpias/DPIA-NOPE-1"):
        response = await outsider.get(path)
        assert response.status_code == 404, path
        assert "not shared with you" in response.text


async def test_only_owners_invite(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    dpia_id = server[1].dpia_id
    path = f"/dpias/{dpia_id}/participants"
    for role in ("editor", "commenter", "viewer", "dpo"):
        page = await clients[role].get(path)
        assert "Invite someone" not in page.text
        response = await clients[role].post(
            path,
            data={
                "csrftoken": csrf_field(page.text),
                "action": "invite",
                "email": f"friend-of-{role}@evil.example",
                "role": "owner",
            },
        )
        assert response.status_code == 403, role
    owner_page = await clients["owner"].get(path)
    response = await clients["owner"].post(
        path,
        data={
            "csrftoken": csrf_field(owner_page.text),
            "action": "invite",
            "email": "partner@charity.example",
            "name": "Jo <b>Martin</b>",
            "role": "commenter",
        },
    )
    assert response.status_code == 303
    listing = (await clients["owner"].get(path)).text
    assert "Jo &lt;b&gt;Martin&lt;/b&gt;" in listing and "email only" in listing
    assert "evil.example" not in listing


async def test_markup_in_a_title_is_shown_as_text_everywhere(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    owner = clients["owner"]
    form_page = await owner.get("/dpias/new")
    lead = form_page.text.split('name="lead"')[1].split('value="')[1].split('"')[0]
    response = await owner.post(
        "/dpias/new",
        data={
            "csrftoken": csrf_field(form_page.text),
            "title": "<script>alert('x')</script> sharing",
            "lead": lead,
            "origin": "",
        },
    )
    assert response.status_code == 303
    dpia_path = response.headers["location"]
    for path in ("/dpias", dpia_path, f"{dpia_path}/participants"):
        html = (await owner.get(path)).text
        assert "<script>alert" not in html, path
    assert "&lt;script&gt;alert" in (await owner.get("/dpias")).text
    editor = await owner.get(dpia_path)
    assert "default-src 'self'" in editor.headers["content-security-policy"]


async def test_bad_form_and_api_input_gets_a_clear_4xx_and_changes_nothing(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    owner = clients["owner"]
    dpia_id = server[1].dpia_id
    page = await owner.get("/dpias/new")
    token = csrf_field(page.text)
    before = (await owner.get("/dpias")).text.count("DPIA-CAM-")
    huge = await owner.post("/dpias/new", data={"csrftoken": token, "title": "x" * 400_000})
    assert huge.status_code == 413
    long_title = await owner.post(
        "/dpias/new", data={"csrftoken": token, "title": "x" * 301, "lead": "1", "origin": ""}
    )
    assert long_title.status_code == 400 and "longer than 300" in long_title.text
    assert (await owner.get("/dpias")).text.count("DPIA-CAM-") == before

    api = f"/api/dpias/{dpia_id}/comments"
    headers = {"x-csrftoken": owner.cookies["csrftoken"], "content-type": "application/json"}
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"section": "nowhere", "text": "hi"}', 400, "has no section"),
        (b'{"section": "need", "text": "   "}', 400, "needs some text"),
        (b'{"section": "need", "text": 5}', 400, "must be a string"),
    ]
    for body, status, message in cases:
        response = await owner.post(api, content=body, headers=headers)
        assert response.status_code == status, body
        assert message in response.json()["error"], body
    no_csrf = await owner.post(
        api, json={"section": "need", "text": "hi"}, headers={"x-csrftoken": "forged"}
    )
    assert no_csrf.status_code == 403


async def test_a_commenter_comment_reaches_a_connected_editor_at_once(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    live, site = server
    watcher = await YClient.connect(live.url(site.dpia_id, role=Role.EDITOR))
    try:
        commenter = clients["commenter"]
        response = await commenter.post(
            f"/api/dpias/{site.dpia_id}/comments",
            json={"section": "risks", "text": "<img src=x onerror=alert(1)> check R1"},
            headers={"x-csrftoken": commenter.cookies["csrftoken"]},
        )
        assert response.status_code == 201, response.text
        comment_id = response.json()["id"]
        comments = watcher.doc.get("comments", type=Map)
        await watcher.wait_until(lambda: comment_id in comments)
        comment = comments[comment_id].to_py()
        assert comment["author_name"] == "Commenter Person"
        assert (comment["channel"], comment["section"]) == ("browser", "risks")
        assert comment["text"] == "<img src=x onerror=alert(1)> check R1"  # stored as text
        viewer = clients["viewer"]
        refused = await viewer.post(
            f"/api/dpias/{site.dpia_id}/comments",
            json={"section": "risks", "text": "viewers cannot"},
            headers={"x-csrftoken": viewer.cookies["csrftoken"]},
        )
        assert refused.status_code == 403
        outsider = clients["outsider"]
        hidden = await outsider.post(
            f"/api/dpias/{site.dpia_id}/comments",
            json={"section": "risks", "text": "who is there"},
            headers={"x-csrftoken": outsider.cookies["csrftoken"]},
        )
        assert hidden.status_code == 404
    finally:
        await watcher.close()


async def test_api_tokens_post_comments_without_cookies(server: tuple[LiveServer, Site]) -> None:
    live, site = server
    token = issue_token(live.settings, site.dpia_id, Role.COMMENTER)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{live.port}", timeout=WAIT_SECONDS
    ) as client:
        response = await client.post(
            f"/api/dpias/{site.dpia_id}/comments",
            json={"section": "need", "field": "aims", "text": "From a script"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201
        viewer_token = issue_token(live.settings, site.dpia_id, Role.VIEWER)
        refused = await client.post(
            f"/api/dpias/{site.dpia_id}/comments",
            json={"section": "need", "text": "no"},
            headers={"authorization": f"Bearer {viewer_token}"},
        )
        assert refused.status_code == 403


async def _ws(live: LiveServer, dpia_id: str, client: httpx.AsyncClient, **headers: str) -> YClient:
    return await session_socket(live.port, dpia_id, client, sync=False, **headers)


async def test_websocket_roles_follow_the_session(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    live, site = server
    owner = await _ws(live, site.dpia_id, clients["owner"])
    viewer = await _ws(live, site.dpia_id, clients["viewer"])
    commenter = await _ws(live, site.dpia_id, clients["commenter"])
    try:
        await owner.synced.wait()
        values = owner.doc.get("values", type=Map)
        values[REFERENCE] = "owner wrote this"
        await owner.wait_saved()
        for reader in (viewer, commenter):
            await reader.wait_until(
                lambda r=reader: r.doc.get("values", type=Map).get(REFERENCE) == "owner wrote this"
            )
            reader.doc.get("values", type=Map)[REFERENCE] = "sneaky"
            await reader.wait_until(lambda r=reader: bool(r.denied))
        fresh = await _ws(live, site.dpia_id, clients["editor"])
        await fresh.synced.wait()
        assert fresh.doc.get("values", type=Map).get(REFERENCE) == "owner wrote this"
        await fresh.close()
    finally:
        for client in (owner, viewer, commenter):
            await client.close()

    outsider = await _ws(live, site.dpia_id, clients["outsider"])
    assert (await outsider.wait_closed())[0] == 4404
    anonymous = await _ws(live, site.dpia_id, clients["anonymous"])
    assert (await anonymous.wait_closed())[0] == 4401
    hijack = await _ws(live, site.dpia_id, clients["owner"], origin="https://evil.example")
    assert (await hijack.wait_closed())[0] == 4403


async def test_owners_remove_participants_but_never_the_last_owner(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    path = f"/dpias/{server[1].dpia_id}/participants"
    owner = clients["owner"]
    page = (await owner.get(path)).text
    remove = r'participants/remove" class="inline">\s*<input type="hidden" name="participant"'
    ids = re.findall(remove + r' value="(\d+)"', page)
    token = csrf_field(page)
    confirmed = {"csrftoken": token, "action": "remove", "confirm": "yes"}
    last_owner = await owner.post(path, data={**confirmed, "participant": ids[0]})
    assert last_owner.status_code == 409 and "at least one owner" in last_owner.text
    removed = await owner.post(path, data={**confirmed, "participant": ids[-1]})
    assert removed.status_code == 303
    assert len(re.findall(remove, (await owner.get(path)).text)) == len(ids) - 1


async def test_repeated_failed_sign_ins_answer_429_with_retry_after(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{live.port}", timeout=WAIT_SECONDS
    ) as client:
        token = csrf_field((await client.get("/login")).text)
        statuses = []
        for _ in range(6):
            response = await client.post(
                "/login",
                data={"csrftoken": token, "email": site.emails["viewer"], "password": "wrong!"},
            )
            statuses.append(response.status_code)
    assert statuses == [403] * 5 + [429]
    assert int(response.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in response.text


async def test_email_preferences_are_set_from_the_notifications_page(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    editor = clients["editor"]
    dpia_id = server[1].dpia_id
    page = await editor.get("/notifications")
    assert page.status_code == 200 and f'name="dpia:{dpia_id}"' in page.text
    saved = await editor.post(
        "/notifications/preferences",
        data={"csrftoken": csrf_field(page.text), "overall": "daily", f"dpia:{dpia_id}": "off"},
    )
    assert saved.status_code == 303
    after = (await editor.get("/notifications?saved=1")).text
    assert '<option value="daily" selected>' in after
    assert '<option value="off" selected>' in after
    refused = await editor.post(
        "/notifications/preferences",
        data={"csrftoken": csrf_field(after), "overall": "weekly"},
    )
    assert refused.status_code == 400
    hidden = await clients["outsider"].post(
        "/notifications/preferences",
        data={
            "csrftoken": csrf_field((await clients["outsider"].get("/notifications")).text),
            "overall": "daily",
            f"dpia:{dpia_id}": "off",
        },
    )
    assert hidden.status_code == 404


async def test_the_unread_count_streams_live_to_an_open_page(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    editor, commenter = clients["editor"], clients["commenter"]
    counts: list[int] = []

    async def listen() -> None:
        async with editor.stream("GET", "/notifications/stream", timeout=WAIT_SECONDS) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    counts.append(int(line.split('"unread": ')[1].rstrip("}")))
                    if len(counts) == 2:
                        return

    listening = asyncio.create_task(listen())
    async with asyncio.timeout(WAIT_SECONDS):
        while not counts:
            await asyncio.sleep(0.02)
    response = await commenter.post(
        f"/api/dpias/{server[1].dpia_id}/comments",
        json={"section": "need", "text": "Is the outcome measurable?"},
        headers={"x-csrftoken": commenter.cookies["csrftoken"]},
    )
    assert response.status_code == 201
    await asyncio.wait_for(listening, WAIT_SECONDS)
    assert counts == [0, 1]
    anonymous = await clients["anonymous"].get("/notifications/stream")
    assert anonymous.status_code == 401


async def test_failed_mail_is_shown_to_admins_of_the_lead_organisation_only(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    from datetime import UTC, datetime

    from server.storage.models import OutboxMessage
    from tests.support.site import PASSWORD

    live, site = server

    async def arrange() -> None:
        runtime = live.runtime
        await runtime.accounts.create_user(
            "admin@camden.example", "Ada Admin", PASSWORD, "CAM", admin=True
        )
        await runtime.accounts.create_user(
            "admin@nlft.example", "Nia Admin", PASSWORD, "NLFT", admin=True
        )
        async with runtime.sessions.begin() as session:
            session.add(
                OutboxMessage(
                    message_id="<failed.1@opendpia.test>",
                    dpia_id=site.dpia_id,
                    subject="DPIA update that bounced",
                    sender="n@opendpia.test",
                    recipient="gone@partner.example",
                    message=b"Subject: x\r\n\r\nx",
                    status="failed",
                    attempts=9,
                    next_attempt_at=datetime.now(UTC),
                    last_error="550 5.1.1 no such mailbox",
                    created_at=datetime.now(UTC),
                )
            )

    live.call(arrange())
    base = f"http://127.0.0.1:{live.port}"
    camden_admin = await signed_in(base, "admin@camden.example")
    page = await camden_admin.get("/admin/mail")
    assert page.status_code == 200
    assert "gone@partner.example" in page.text and "550 5.1.1" in page.text
    trust_admin = await signed_in(base, "admin@nlft.example")
    other = await trust_admin.get("/admin/mail")
    assert other.status_code == 200 and "gone@partner.example" not in other.text
    assert (await clients["owner"].get("/admin/mail")).status_code == 404  # not an admin
    await camden_admin.aclose()
    await trust_admin.aclose()


async def test_owners_assign_reviewers_and_anyone_can_watch_or_unwatch(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    dpia_id = server[1].dpia_id
    participants = (await clients["owner"].get(f"/dpias/{dpia_id}/participants")).text
    some_id = int(participants.split('name="participant" value="')[-1].split('"')[0])
    body = {"section": "risks", "participant": some_id, "assigned": True}
    for role, status in (("owner", 200), ("editor", 403), ("outsider", 404)):
        client = clients[role]
        response = await client.post(
            f"/api/dpias/{dpia_id}/reviewers",
            json=body,
            headers={"x-csrftoken": client.cookies["csrftoken"]},
        )
        assert response.status_code == status, role
    viewer = clients["viewer"]
    watched = await viewer.post(
        f"/api/dpias/{dpia_id}/watch",
        json={"section": "risks", "watching": False},
        headers={"x-csrftoken": viewer.cookies["csrftoken"]},
    )
    assert watched.status_code == 200 and watched.json() == {"section": "risks", "watching": False}
    bad = await viewer.post(
        f"/api/dpias/{dpia_id}/watch",
        json={"section": "risks", "watching": "no"},
        headers={"x-csrftoken": viewer.cookies["csrftoken"]},
    )
    assert bad.status_code == 400


async def test_sections_are_watched_and_reviewers_chosen_from_pages(
    clients: dict[str, httpx.AsyncClient], server: tuple[LiveServer, Site]
) -> None:
    dpia_id = server[1].dpia_id
    viewer = clients["viewer"]
    page = (await viewer.get("/notifications")).text
    assert 'name="watch" value="risks" checked' in page
    saved = await viewer.post(
        "/notifications/watch",
        data={"csrftoken": csrf_field(page), "dpia": dpia_id, "watch": ["need", "processing"]},
    )
    assert saved.status_code == 303
    after = (await viewer.get("/notifications")).text
    assert 'name="watch" value="risks" >' in after or 'value="risks" >' in after
    assert 'name="watch" value="need" checked' in after

    owner = clients["owner"]
    listing = (await owner.get(f"/dpias/{dpia_id}/participants")).text
    someone = (
        listing.split('value="reviews"')[1].split('name="participant" value="')[1].split('"')[0]
    )
    chosen = await owner.post(
        f"/dpias/{dpia_id}/participants",
        data={
            "csrftoken": csrf_field(listing),
            "action": "reviews",
            "participant": someone,
            "reviews": ["risks", "measures"],
        },
    )
    assert chosen.status_code == 303
    listing = (await owner.get(f"/dpias/{dpia_id}/participants")).text
    assert "2 sections" in listing
    editor = clients["editor"]
    shown = (await editor.get(f"/dpias/{dpia_id}/participants")).text
    shown = html.unescape(shown)
    risks, measures = "Step 5: identify and assess risks", "Step 6: measures to reduce risk"
    assert f"{risks}, {measures}" in shown or f"{measures}, {risks}" in shown
