"""Replying to a comment and resolving it, through the JSON API of the running app: the
rules per role, a locked DPIA, an unknown id, the guard against a forged reply, and a
second client that sees every change live over the WebSocket."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pycrdt import Array, Map

from server.domain.access import Role
from tests.support.live import LiveServer, issue_token
from tests.support.site import Site, seeded_server, session_socket, signed_in
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(sqlite_url) as running:
        yield running


@pytest_asyncio.fixture
async def people(
    server: tuple[LiveServer, Site],
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    live, site = server
    clients = {
        role: await signed_in(f"http://127.0.0.1:{live.port}", site.emails[role])
        for role in ("owner", "editor", "commenter", "viewer", "dpo")
    }
    yield clients
    for client in clients.values():
        await client.aclose()


def _path(site: Site, comment_id: str = "", tail: str = "") -> str:
    base = f"/api/dpias/{site.dpia_id}/comments"
    return f"{base}/{comment_id}/{tail}" if comment_id else base


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(path, json=body, headers={"x-csrftoken": client.cookies["csrftoken"]})


async def _comment(client: httpx.AsyncClient, site: Site, text: str) -> str:
    response = await _post(client, _path(site), {"section": "need", "text": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _entry(client: YClient, comment_id: str) -> Map[Any] | None:
    found = client.doc.get("comments", type=Map).get(comment_id)
    return found if isinstance(found, Map) else None


def _resolved(client: YClient, comment_id: str) -> object:
    entry = _entry(client, comment_id)
    return entry.get("resolved") if entry is not None else None


def _reply_texts(client: YClient, comment_id: str) -> list[str]:
    entry = _entry(client, comment_id)
    replies = entry.get("replies") if entry is not None else None
    return [str(r.get("text")) for r in replies] if isinstance(replies, Array) else []


def _notified(live: LiveServer, excerpt: str) -> set[str]:
    path = live.settings.sqlite_path()
    assert path is not None
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT p.email FROM notifications n JOIN participants p ON p.id = n.participant_id"
            " WHERE n.excerpt = ?",
            (excerpt,),
        ).fetchall()
    return {email for (email,) in rows}


async def test_replies_follow_the_comment_rule_and_reach_a_second_client_live(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    comment_id = await _comment(people["commenter"], site, "Is the lawful basis settled?")
    watcher = await session_socket(live.port, site.dpia_id, people["viewer"])
    try:
        await watcher.wait_until(lambda: _entry(watcher, comment_id) is not None)

        editor = await _post(
            people["editor"], _path(site, comment_id, "replies"), {"text": "Yes: public task."}
        )
        assert editor.status_code == 201, editor.text
        await watcher.wait_until(lambda: _reply_texts(watcher, comment_id) == ["Yes: public task."])

        bearer = issue_token(live.settings, site.dpia_id, Role.COMMENTER)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as script:
            token = await script.post(
                _path(site, comment_id, "replies"),
                json={"text": "Noted by the tracker."},
                headers={"authorization": f"Bearer {bearer}"},
            )
        assert token.status_code == 201, token.text
        viewer = await _post(people["viewer"], _path(site, comment_id, "replies"), {"text": "Me?"})
        assert (viewer.status_code, viewer.json()) == (
            403,
            {
                "error": "You take part in this DPIA as a viewer, who cannot comment; "
                "ask an owner for another role"
            },
        )
        await watcher.wait_until(lambda: len(_reply_texts(watcher, comment_id)) == 2)
        entry = _entry(watcher, comment_id)
        assert entry is not None
        first, second = list(entry["replies"])
        assert (first["author_name"], first["channel"]) == ("Editor Person", "browser")
        assert (second["channel"], second["text"]) == ("api", "Noted by the tracker.")
        assert "Me?" not in _reply_texts(watcher, comment_id)
    finally:
        await watcher.close()
    # The comment's author hears of the editor's reply; the editor does not hear of their own.
    assert site.emails["commenter"] in _notified(live, "Yes: public task.")
    assert site.emails["editor"] not in _notified(live, "Yes: public task.")
    # The next reply reaches the earlier replier too.
    later = await _post(people["dpo"], _path(site, comment_id, "replies"), {"text": "Agreed."})
    assert later.status_code == 201, later.text
    assert {site.emails["commenter"], site.emails["editor"]} <= _notified(live, "Agreed.")


async def test_resolving_follows_its_rule_and_reaches_a_second_client_live(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    owners = await _comment(people["owner"], site, "Please check the retention period.")
    own = await _comment(people["commenter"], site, "My own question.")
    watcher = await session_socket(live.port, site.dpia_id, people["viewer"])
    try:
        await watcher.wait_until(lambda: _entry(watcher, own) is not None)

        others = await _post(
            people["commenter"], _path(site, owners, "resolve"), {"resolved": True}
        )
        assert (others.status_code, others.json()) == (
            403,
            {
                "error": "You take part in this DPIA as a commenter, who can resolve only your own "
                "comments; ask its author, an owner, an editor or the DPO"
            },
        )
        mine = await _post(people["commenter"], _path(site, own, "resolve"), {"resolved": True})
        assert mine.status_code == 200, mine.text
        await watcher.wait_until(lambda: _resolved(watcher, own) is True)
        entry = _entry(watcher, own)
        assert entry is not None and entry["resolved_by"] == "Commenter Person"
        assert str(entry["resolved_at"]).startswith("20")

        reopened = await _post(people["dpo"], _path(site, own, "resolve"), {"resolved": False})
        assert reopened.status_code == 200, reopened.text
        await watcher.wait_until(lambda: _resolved(watcher, own) is False)
        entry = _entry(watcher, own)
        assert entry is not None and "resolved_by" not in entry

        for role in ("owner", "editor"):
            done = await _post(people[role], _path(site, owners, "resolve"), {"resolved": True})
            assert done.status_code == 200, (role, done.text)
        refused = await _post(people["viewer"], _path(site, owners, "resolve"), {"resolved": False})
        assert refused.status_code == 403
        assert _resolved(watcher, owners) is True
    finally:
        await watcher.close()


async def test_an_unknown_comment_is_404_and_a_malformed_request_400(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    _, site = server
    reply = await _post(people["editor"], _path(site, "c-nope", "replies"), {"text": "Hello?"})
    resolve = await _post(people["editor"], _path(site, "c-nope", "resolve"), {"resolved": True})
    missing = "There is no comment 'c-nope' on this DPIA; reload to see its comments"
    assert (reply.status_code, reply.json()) == (404, {"error": missing})
    assert (resolve.status_code, resolve.json()) == (404, {"error": missing})
    comment_id = await _comment(people["editor"], site, "A point.")
    empty = await _post(people["editor"], _path(site, comment_id, "replies"), {"text": "  "})
    assert (empty.status_code, empty.json()) == (400, {"error": "A reply needs some text"})
    wrong = await _post(people["editor"], _path(site, comment_id, "resolve"), {"resolved": "yes"})
    assert wrong.status_code == 400
    no_csrf = await people["editor"].post(
        _path(site, comment_id, "replies"), json={"text": "Without the CSRF header"}
    )
    assert no_csrf.status_code == 403


async def test_a_locked_dpia_refuses_replies_and_resolving(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    comment_id = await _comment(people["commenter"], site, "Before approval.")
    path = live.settings.sqlite_path()
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE dpias SET status = 'approved' WHERE id = ?", (site.dpia_id,))
    approved = "Read-only: this DPIA is approved; changes go into a new version started from it"
    reply = await _post(people["owner"], _path(site, comment_id, "replies"), {"text": "Late."})
    resolve = await _post(people["owner"], _path(site, comment_id, "resolve"), {"resolved": True})
    assert (reply.status_code, reply.json()) == (409, {"error": approved})
    assert (resolve.status_code, resolve.json()) == (409, {"error": approved})


async def test_a_reply_written_over_the_websocket_is_refused_by_the_guard(
    server: tuple[LiveServer, Site], people: dict[str, httpx.AsyncClient]
) -> None:
    live, site = server
    comment_id = await _comment(people["owner"], site, "A real comment.")
    forger = await session_socket(live.port, site.dpia_id, people["editor"])
    try:
        await forger.wait_until(lambda: _entry(forger, comment_id) is not None)
        entry = _entry(forger, comment_id)
        assert entry is not None
        entry["replies"].append(Map({"author_name": "Priya Shah (DPO)", "text": "Approved."}))
        entry["resolved"] = True
        await forger.wait_until(lambda: bool(forger.denied))
        assert "Comments are written by the server" in forger.denied[-1]
    finally:
        await forger.close()
    reader = await session_socket(live.port, site.dpia_id, people["viewer"])
    try:
        await reader.wait_until(lambda: _entry(reader, comment_id) is not None)
        assert _reply_texts(reader, comment_id) == []
        assert _resolved(reader, comment_id) is False
    finally:
        await reader.close()
