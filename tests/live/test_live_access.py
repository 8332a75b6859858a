"""Access follows the person live, and no client writes what only the server may write.

One process on SQLite here; the same promises across two processes on PostgreSQL and Redis
are in test_scaleout.py. Every test talks to the real app over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from argon2 import PasswordHasher
from pycrdt import Map, XmlElement, XmlFragment, XmlText
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.access import Role, TokenSigner
from server.services.accounts import AccountService, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.support.live import LiveServer, issue_token, make_settings, serving
from tests.support.site import (
    Site,
    csrf_field,
    manage_participant,
    prepare,
    seed_site,
    seeded_server,
    session_socket,
    signed_in,
)
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio

PARTNER = "partner@charity.example"
ANSWER = "screening.outcome"


@pytest.fixture
def server(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    prepare(sqlite_url)
    site = asyncio.run(seed_site(sqlite_url))
    asyncio.run(_invite_email_only(sqlite_url, site))
    with serving(make_settings(sqlite_url)) as live:
        yield live, site


async def _invite_email_only(database_url: str, site: Site) -> None:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    owner = await accounts.user_by_email(site.emails["owner"])
    assert owner is not None
    await DpiaService(sessions, SqlUpdateStore(engine)).invite(
        owner, site.dpia_id, PARTNER, "viewer"
    )
    await engine.dispose()


async def _connect(
    live: LiveServer, dpia_id: str, client: httpx.AsyncClient, *, sync: bool = True
) -> YClient:
    return await session_socket(live.port, dpia_id, client, sync=sync)


async def _participant_id(owner: httpx.AsyncClient, dpia_id: str, email: str) -> str:
    page = (await owner.get(f"/dpias/{dpia_id}/participants")).text
    row = page.split(email, 1)[1]
    return row.split('name="participant" value="', 1)[1].split('"', 1)[0]


def _answer(client: YClient) -> object:
    return client.doc.get("values", type=Map).get(ANSWER)


def _paragraph(text: str) -> XmlElement:
    return XmlElement("paragraph", {}, [XmlText(text)])


async def test_an_editor_downgraded_while_connected_cannot_write_on_the_open_socket(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    live, site = server
    editor_http = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["editor"])
    editor = await _connect(live, site.dpia_id, editor_http)
    watcher = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
    try:
        editor.doc.get("values", type=Map)[ANSWER] = "required"
        await editor.wait_saved()
        await watcher.wait_until(lambda: _answer(watcher) == "required")

        await manage_participant(
            owner, site.dpia_id, site.emails["editor"], action="role", role="viewer"
        )

        editor.doc.get("values", type=Map)[ANSWER] = "not-required"
        await editor.wait_until(lambda: bool(editor.denied))
        assert "viewer" in editor.denied[-1]
        fresh = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
        assert _answer(fresh) == "required"  # the write after the downgrade was not stored
        assert _answer(watcher) == "required"  # nor relayed
        await fresh.close()
    finally:
        for client in (editor, watcher):
            await client.close()
        await editor_http.aclose()
    live.restart()
    after = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
    assert _answer(after) == "required"
    await after.close()


async def test_a_participant_removed_while_connected_is_closed_and_gets_nothing_more(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    live, site = server
    viewer_http = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["viewer"])
    viewer = await _connect(live, site.dpia_id, viewer_http)
    writer = await YClient.connect(live.url(site.dpia_id, saved=True))
    try:
        await manage_participant(owner, site.dpia_id, site.emails["viewer"], action="remove")
        removed_at = time.monotonic()
        code, reason = await viewer.wait_closed(timeout=10)
        assert time.monotonic() - removed_at < 1.0
        assert code == 4403 and reason is not None and "no longer take part" in reason
        writer.doc.get("values", type=Map)[ANSWER] = "written after the removal"
        await writer.wait_saved()
        assert _answer(viewer) is None
        again = await _connect(live, site.dpia_id, viewer_http, sync=False)
        assert (await again.wait_closed())[0] == 4404
    finally:
        for client in (viewer, writer):
            await client.close()
        await viewer_http.aclose()


async def test_a_read_link_token_stops_working_once_its_person_is_removed(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    live, site = server
    person = await _participant_id(owner, site.dpia_id, PARTNER)
    link = live.runtime.notifications.mail.read_link(int(person))
    path = "/r/" + link.rsplit("/r/", 1)[1]
    page = await owner.get(path)
    assert page.status_code == 200
    token = page.text.split("&#34;token&#34;: &#34;", 1)[1].split("&#34;", 1)[0]
    reader = await YClient.connect(
        f"ws://127.0.0.1:{live.port}/ws/dpia/{site.dpia_id}?token={token}"
    )
    renewed = await owner.get(f"{path}/token")
    assert renewed.status_code == 200 and renewed.json()["token"]
    grant = TokenSigner(live.settings.secret_key).verify(token, site.dpia_id)
    assert grant.expires_at - time.time() <= live.settings.person_token_seconds
    assert live.settings.person_token_seconds < live.settings.reply_days * 86400
    try:
        await manage_participant(owner, site.dpia_id, PARTNER, action="remove")
        code, reason = await reader.wait_closed(timeout=10)
        assert code == 4403 and reason is not None and "no longer take part" in reason
        # The token is still within its lifetime, but it stands for someone who left.
        retry = await YClient.connect(
            f"ws://127.0.0.1:{live.port}/ws/dpia/{site.dpia_id}?token={token}", sync=False
        )
        assert (await retry.wait_closed())[0] == 4403
        assert (await owner.get(f"{path}/token")).status_code == 401
    finally:
        await reader.close()


async def test_a_forged_comment_and_a_meta_write_are_refused_and_leave_no_record(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    live, site = server
    editor_http = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["editor"])
    forger = await _connect(live, site.dpia_id, editor_http)
    watcher = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
    try:
        forger.doc.get("comments", type=Map)["c-forged"] = Map(
            {
                "section": "need",
                "author_name": "Priya Shah (DPO)",
                "channel": "email",
                "text": "Approved, no risks.",
                "created": "2026-01-15T09:00:00+00:00",
                "resolved": False,
            }
        )
        await forger.wait_until(lambda: bool(forger.denied))
        assert "Comments are written by the server" in forger.denied[-1]
    finally:
        await forger.close()
        await editor_http.aclose()
    meta_writer = await YClient.connect(live.url(site.dpia_id, role=Role.EDITOR))
    try:
        meta_writer.doc.get("meta", type=Map)["template"] = "something-else"
        await meta_writer.wait_until(lambda: bool(meta_writer.denied))
        assert "'meta' is written by the server" in meta_writer.denied[-1]
    finally:
        await meta_writer.close()
    assert "c-forged" not in watcher.doc.get("comments", type=Map)
    await watcher.close()

    live.restart()
    reader = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
    assert "c-forged" not in reader.doc.get("comments", type=Map)
    assert reader.doc.get("meta", type=Map)["template"] == "uk-dpia"
    await reader.close()
    exported = await owner.get(f"/dpias/{site.dpia_id}/export.json")
    assert exported.status_code == 200, exported.status_code
    assert "Priya Shah (DPO)" not in exported.text
    history = (await owner.get(f"/dpias/{site.dpia_id}/history")).text
    assert "Priya Shah (DPO)" not in history and "Approved, no risks." not in history
    audit = live.runtime.audit
    assert live.call(audit.verify(site.dpia_id)) is None
    chain = json.dumps([entry.record.data for entry in live.call(audit.entries(site.dpia_id))])
    assert "Priya Shah (DPO)" not in chain and "Approved, no risks." not in chain


async def test_an_unknown_key_and_an_oversized_value_are_refused_without_reconnecting(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    intruder = await YClient.connect(live.url(site.dpia_id, role=Role.EDITOR))
    big = await YClient.connect(live.url(site.dpia_id, role=Role.EDITOR))
    try:
        intruder.doc.get("values", type=Map)["stash.data"] = "x" * 3_000_000
        await intruder.wait_until(lambda: bool(intruder.denied))
        assert "has no field 'stash.data'" in intruder.denied[-1]

        nature = big.doc.get("field:processing.nature", type=XmlFragment)
        nature.children.append(_paragraph("y" * (live.settings.max_field_bytes + 10)))
        await big.wait_until(lambda: bool(big.denied))
        assert "over the limit" in big.denied[-1]
        # Refused, not disconnected: a provider would otherwise reconnect and resend forever.
        assert intruder.close_code is None and big.close_code is None
    finally:
        await intruder.close()
        await big.close()
    fresh = await YClient.connect(live.url(site.dpia_id, role=Role.VIEWER))
    assert "stash.data" not in fresh.doc.get("values", type=Map)
    assert str(fresh.doc.get("field:processing.nature", type=XmlFragment)) == ""
    await fresh.close()


async def test_signing_out_closes_the_connections_of_that_session(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    editor_http = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["editor"])
    editor = await _connect(live, site.dpia_id, editor_http)
    try:
        page = await editor_http.get("/dpias")
        await editor_http.post("/logout", data={"csrftoken": csrf_field(page.text)})
        code, _ = await editor.wait_closed(timeout=10)
        assert code == 4401
    finally:
        await editor.close()
        await editor_http.aclose()


async def test_tokens_issued_for_a_person_never_grant_more_than_the_person_has(
    server: tuple[LiveServer, Site],
) -> None:
    live, site = server
    person = await _lookup_user_id(live, site.emails["viewer"])
    token = issue_token(live.settings, site.dpia_id, Role.EDITOR, principal=f"user:{person}")
    client = await YClient.connect(
        f"ws://127.0.0.1:{live.port}/ws/dpia/{site.dpia_id}?token={token}"
    )
    try:
        client.doc.get("values", type=Map)[ANSWER] = "required"
        await client.wait_until(lambda: bool(client.denied))
        assert "viewer" in client.denied[-1]
    finally:
        await client.close()


async def _lookup_user_id(live: LiveServer, email: str) -> int:
    engine = create_engine(live.settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    user = await AccountService(sessions, PasswordHasher()).user_by_email(email)
    await engine.dispose()
    assert user is not None
    return user.id


@pytest.fixture
def rechecking(sqlite_url: str) -> Iterator[tuple[LiveServer, Site]]:
    """One embedded process that decides open connections again every 0.2 s."""
    with seeded_server(sqlite_url, access_recheck_seconds=0.2) as served:
        yield served


async def test_a_suspension_made_outside_the_app_reaches_open_editors_of_one_process(
    rechecking: tuple[LiveServer, Site],
) -> None:
    live, site = rechecking
    editor_http = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["editor"])
    editor = await _connect(live, site.dpia_id, editor_http)
    try:
        engine = create_engine(live.settings.database_url)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        accounts = AccountService(sessions, password_hasher("fast-for-tests"))
        await accounts.set_active(site.emails["editor"], False)
        await engine.dispose()
        code, reason = await editor.wait_closed(timeout=10)
        assert code == 4403 and reason is not None and "suspended" in reason
    finally:
        await editor.close()
        await editor_http.aclose()
