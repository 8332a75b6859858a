"""The data protection pages over real HTTP, on SQLite and PostgreSQL: deleting a DPIA (owners,
confirmed, open editors closed), erasing a partner (confirmed; the history, exports and every
table hold no trace afterwards; ``opendpia audit verify`` holds), a subject access export for
an administrator, an organisation's retention, and the privacy notice for anyone.

Exports name people only through sign-offs, which an email-only partner cannot make: that
exports lose a signer's name is shown on a member in tests/integration/test_data_protection.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pycrdt import Map
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.cli import main
from server.services.accounts import AccountService, password_hasher
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.storage.database import create_engine
from server.storage.models import Dpia
from server.storage.updates import SqlUpdateStore
from tests.support.exports import pdf_text, word_text
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.protection import (
    OWNER_WORDS,
    PARTNER_EMAIL,
    PARTNER_WORDS,
    database_text,
    leave_traces,
    traces_in,
)
from tests.support.site import (
    PASSWORD,
    Site,
    csrf_field,
    prepare,
    seed_site,
    session_socket,
    signed_in,
)

pytestmark = pytest.mark.asyncio
ADMIN = "admin@camden.example"
CONTROLLER = "London Borough of Camden"


async def _seed(database_url: str) -> Site:
    site = await seed_site(database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    store = SqlUpdateStore(engine)
    owner = await accounts.user_by_email(site.emails["owner"])
    assert owner is not None
    await accounts.create_user(ADMIN, "Ada Admin", PASSWORD, "CAM", admin=True)
    await leave_traces(
        sessions, store, DpiaService(sessions, store), AuditTrail(sessions), owner, site.dpia_id
    )
    await engine.dispose()
    return site


@pytest.fixture
def server(database_url: str) -> Iterator[tuple[LiveServer, Site, str]]:
    prepare(database_url)
    site = asyncio.run(_seed(database_url))
    settings = make_settings(
        database_url,
        controller_name=CONTROLLER,
        dpo_contact="dpo@camden.example",
        retention_check_seconds=0.2,
    )
    with serving(settings) as live:
        yield live, site, database_url


def _base(live: LiveServer) -> str:
    return f"http://127.0.0.1:{live.port}"


async def _post(client: httpx.AsyncClient, path: str, **data: str) -> httpx.Response:
    page = await client.get(path)
    return await client.post(path, data={"csrftoken": csrf_field(page.text), **data})


async def test_an_owner_deletes_a_draft_after_confirming_and_open_editors_close(
    server: tuple[LiveServer, Site, str],
) -> None:
    live, site, _ = server
    path = f"/dpias/{site.dpia_id}/delete"
    owner = await signed_in(_base(live), site.emails["owner"])
    editor = await signed_in(_base(live), site.emails["editor"])
    try:
        editing = await session_socket(live.port, site.dpia_id, editor)
        link = f'href="/dpias/{site.dpia_id}/delete"'
        assert link in (await owner.get(f"/dpias/{site.dpia_id}")).text
        # The editor may not; a POST without confirmation changes nothing.
        refused = await editor.get(path)
        assert refused.status_code == 403 and "owners" in refused.text
        unconfirmed = await _post(owner, path)
        assert unconfirmed.status_code == 400 and "Nothing was deleted" in unconfirmed.text
        assert (await owner.get(f"/dpias/{site.dpia_id}")).status_code == 200
        done = await _post(owner, path, confirm="yes")
        assert done.status_code == 303 and done.headers["location"].startswith("/dpias?deleted=")
        code, reason = await editing.wait_closed()
        assert code is not None and "deleted" in (reason or "")
        assert (await owner.get(f"/dpias/{site.dpia_id}")).status_code == 404
        assert "was deleted" in (await owner.get(done.headers["location"])).text
        await editing.close()
    finally:
        await owner.aclose()
        await editor.aclose()


async def test_erasing_a_partner_leaves_no_trace_in_exports_or_tables_and_the_chain_holds(
    server: tuple[LiveServer, Site, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    live, site, database_url = server
    owner = await signed_in(_base(live), site.emails["owner"])
    outsider = await signed_in(_base(live), site.emails["outsider"])
    try:
        participants = (await owner.get(f"/dpias/{site.dpia_id}/participants")).text
        assert 'href="/admin/erase?email=paula.partner%40nlft.example"' in participants
        asking = await owner.get("/admin/erase", params={"email": PARTNER_EMAIL})
        assert asking.status_code == 200 and "Former participant" in asking.text
        assert (
            await outsider.get("/admin/erase", params={"email": PARTNER_EMAIL})
        ).status_code == 403
        assert (
            await owner.get("/admin/erase", params={"email": "not an address"})
        ).status_code == 400
        unconfirmed = await _post(owner, "/admin/erase", email=PARTNER_EMAIL)
        assert unconfirmed.status_code == 400 and "Nothing changed" in unconfirmed.text
        # The history names the partner (their comments) until they are erased, and the
        # search index holds their words.
        assert traces_in((await owner.get(f"/dpias/{site.dpia_id}/history")).text)
        async with asyncio.timeout(WAIT_SECONDS):
            while not await _found(owner, "Paula"):
                await asyncio.sleep(0.05)
        editor = await signed_in(_base(live), site.emails["editor"])
        editing = await session_socket(live.port, site.dpia_id, editor)
        done = await _post(owner, "/admin/erase", email=PARTNER_EMAIL, confirm="yes")
        assert done.status_code == 200 and "Erased" in done.text
        # Open editors close (their copy held the name) and open again on the new history.
        code, reason = await editing.wait_closed()
        assert code is not None and "erased" in (reason or "")
        again = await session_socket(live.port, site.dpia_id, editor)
        comments = again.doc.get("comments", type=Map).to_py()
        assert comments["c-partner"]["author_name"].startswith("Former participant")
        await again.close()
        await editing.close()
        await editor.aclose()
        for kind in ("json", "csv", "pdf", "docx"):
            exported = await owner.get(f"/dpias/{site.dpia_id}/export.{kind}")
            assert exported.status_code == 200
            text = {"pdf": lambda b: pdf_text(b)[0], "docx": lambda b: word_text(b)[0]}.get(
                kind, lambda b: b.decode()
            )(exported.content)
            assert traces_in(text) == [], kind
        history = await owner.get(f"/dpias/{site.dpia_id}/history")
        assert "Former participant" in history.text and traces_in(history.text) == []
        assert await _found(owner, "Paula") == []  # (accents fold: "Pärtner" finds "partner")
        engine = create_engine(database_url)
        try:
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            assert traces_in(await database_text(sessions)) == []
        finally:
            await engine.dispose()
    finally:
        await owner.aclose()
        await outsider.aclose()
    monkeypatch.setenv("OPENDPIA_DATABASE_URL", database_url)
    monkeypatch.setenv("OPENDPIA_ENV", "development")
    assert await asyncio.to_thread(main, ["audit", "verify", site.dpia_id]) == 0
    assert "holds" in capsys.readouterr().out


async def _found(client: httpx.AsyncClient, words: str) -> list[str]:
    """The passages a search finds."""
    response = await client.get("/api/search", params={"q": words})
    assert response.status_code == 200, response.text
    return [result["passage"] for result in response.json()["results"]]


async def test_an_administrator_exports_what_is_held_about_a_partner(
    server: tuple[LiveServer, Site, str],
) -> None:
    live, site, _ = server
    admin = await signed_in(_base(live), ADMIN)
    owner = await signed_in(_base(live), site.emails["owner"])
    try:
        form = await admin.get("/admin/subject-access")
        assert form.status_code == 200 and 'for="email"' in form.text
        exported = await admin.get("/admin/subject-access", params={"email": PARTNER_EMAIL})
        assert exported.status_code == 200
        assert exported.headers["content-disposition"].startswith("attachment")
        data = exported.json()
        assert any(c["text"].startswith(PARTNER_WORDS) for c in data["comments"])
        assert OWNER_WORDS not in json.dumps(data["comments"])
        zipped = await admin.get(
            "/admin/subject-access", params={"email": PARTNER_EMAIL, "format": "zip"}
        )
        assert zipped.headers["content-type"] == "application/zip"
        assert zipped.content.startswith(b"PK")
        for anyone in (PARTNER_EMAIL, "nobody@nowhere.example"):  # an owner, not an admin
            refused = await owner.get("/admin/subject-access", params={"email": anyone})
            assert refused.status_code == 403, anyone
        for bad in ("nobody@nowhere.example", "x" * 300, "@"):
            answer = await admin.get("/admin/subject-access", params={"email": bad})
            assert answer.status_code in (400, 404), bad
    finally:
        await admin.aclose()
        await owner.aclose()


async def test_an_administrator_sets_the_retention_and_bad_input_is_refused(
    server: tuple[LiveServer, Site, str],
) -> None:
    live, site, _ = server
    admin = await signed_in(_base(live), ADMIN)
    owner = await signed_in(_base(live), site.emails["owner"])
    path = "/admin/organisations/CAM/retention"
    try:
        assert "72 months" in (await admin.get(path)).text
        for bad in ("abc", "0", "601", "12.5", "9" * 20, "²", ""):
            refused = await _post(admin, path, months=bad)
            assert refused.status_code == 400, bad
        saved = await _post(admin, path, months="24")
        assert saved.status_code == 303
        assert "24 months" in (await admin.get(saved.headers["location"])).text
        assert (await owner.get(path)).status_code == 403
        assert (await admin.get("/admin/organisations/NOPE/retention")).status_code == 403
    finally:
        await admin.aclose()
        await owner.aclose()


async def test_the_privacy_notice_is_readable_without_signing_in_and_linked_from_every_page(
    server: tuple[LiveServer, Site, str],
) -> None:
    live, _, _ = server
    async with httpx.AsyncClient(base_url=_base(live)) as anonymous:
        notice = await anonymous.get("/privacy")
        assert notice.status_code == 200
        for words in (CONTROLLER, "dpo@camden.example", "72 months", "ico.org.uk", "erasure"):
            assert words in notice.text
        assert 'href="/privacy"' in (await anonymous.get("/login")).text


async def test_the_server_archives_an_expired_dpia_and_an_owner_then_deletes_it(
    server: tuple[LiveServer, Site, str],
) -> None:
    live, site, _ = server
    runtime = live.runtime

    async def close_long_ago() -> None:
        async with runtime.sessions.begin() as session:
            await session.execute(
                update(Dpia)
                .where(Dpia.id == site.dpia_id)
                .values(status="rejected", closed_at=datetime(2015, 3, 1, tzinfo=UTC))
            )

    async def status() -> str | None:
        async with runtime.sessions() as session:
            return await session.scalar(select(Dpia.status).where(Dpia.id == site.dpia_id))

    live.call(close_long_ago())
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while live.call(status()) != "archived":
        assert asyncio.get_running_loop().time() < deadline, "the keeper never archived it"
        await asyncio.sleep(0.05)
    owner = await signed_in(_base(live), site.emails["owner"])
    try:
        editor_page = (await owner.get(f"/dpias/{site.dpia_id}")).text
        assert "kept until" in editor_page and "01 March 2021" in editor_page
        assert "Its retention has ended" in editor_page
        dashboard = (await owner.get("/dpias")).text
        assert "01 Mar 2021" in dashboard and "Waiting for you to confirm deletion" in dashboard
        assert f'href="/dpias/{site.dpia_id}/delete"' in dashboard
        workflow = (await owner.get(f"/dpias/{site.dpia_id}/workflow")).text
        assert f'href="/dpias/{site.dpia_id}/delete"' in workflow
        done = await _post(owner, f"/dpias/{site.dpia_id}/delete", confirm="yes")
        assert done.status_code == 303
    finally:
        await owner.aclose()
    assert live.call(status()) is None
