"""Access follows the person across processes on PostgreSQL and Redis: a lock, a downgrade,
a removal, a read link's token and a suspension made on one process reach another's sockets.

Real processes, real sockets: each test starts its own redis-server and database.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from pycrdt import Map
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.services.accounts import AccountService, password_hasher
from server.services.dpias import DpiaService
from server.services.notification_mail import NotificationMail
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.support.live import WAIT_SECONDS
from tests.support.redisproc import RedisProcess
from tests.support.scaleout import SECRET, editor_url, processes, scaleout_env, stored_document
from tests.support.site import manage_participant, seed_site, session_socket, signed_in
from tests.support.yclient import YClient

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres, pytest.mark.slow]


async def test_a_dpia_locked_on_one_process_refuses_writes_on_another_that_has_it_loaded(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    async with processes(2, database, redis_server, tmp_path) as (owner_side, editor_side):
        editor = await YClient.connect(editor_url(editor_side, site.dpia_id, saved=True))
        editor.doc.get("values", type=Map)["screening.outcome"] = "kept"
        await editor.wait_saved()
        owner = await signed_in(f"http://127.0.0.1:{owner_side.port}", site.emails["owner"])
        response = await owner.post(
            f"/api/dpias/{site.dpia_id}/status",
            json={"status": "abandoned", "reasons": "The sharing will not go ahead."},
            headers={"x-csrftoken": owner.cookies["csrftoken"]},
        )
        assert response.status_code == 200, response.text
        await owner.aclose()

        # The editor's process had the room loaded before the lock: it learns it from the bus.
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                editor.doc.get("values", type=Map)["outcome.ico_reference"] = "refused"
                if any("abandoned" in notice.lower() for notice in editor.denied):
                    break
                await asyncio.sleep(0.2)
        await editor.close()
        await asyncio.sleep(0.5)  # anything wrongly accepted would be committed by now
        stored = (await stored_document(database, site.dpia_id)).to_doc().get("values", type=Map)
        assert stored.to_py() == {"screening.outcome": "kept"}


async def test_a_downgrade_on_one_process_refuses_the_next_write_on_another(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    async with processes(2, database, redis_server, tmp_path) as (owner_side, editor_side):
        editor_http = await signed_in(f"http://127.0.0.1:{editor_side.port}", site.emails["editor"])
        owner = await signed_in(f"http://127.0.0.1:{owner_side.port}", site.emails["owner"])
        editor = await session_socket(editor_side.port, site.dpia_id, editor_http)
        try:
            editor.doc.get("values", type=Map)["screening.outcome"] = "kept"
            await editor.wait_saved()
            await manage_participant(
                owner, site.dpia_id, site.emails["editor"], action="role", role="viewer"
            )
            changed_at = time.monotonic()
            # Within a second the editor's own process follows: its writes are refused.
            async with asyncio.timeout(5):
                while not any("viewer" in notice for notice in editor.denied):
                    editor.doc.get("values", type=Map)["screening.outcome"] = "overwritten"
                    await asyncio.sleep(0.05)
            assert time.monotonic() - changed_at < 1.0
        finally:
            await editor.close()
            await editor_http.aclose()
            await owner.aclose()
        await asyncio.sleep(0.5)  # anything wrongly accepted would be committed by now
        stored = (await stored_document(database, site.dpia_id)).to_doc().get("values", type=Map)
        # At most writes sent before the change reached that process, never after it.
        assert stored.get("screening.outcome") in ("kept", "overwritten")


async def test_a_removal_on_one_process_closes_the_socket_on_another(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    async with processes(2, database, redis_server, tmp_path) as (owner_side, viewer_side):
        viewer_http = await signed_in(f"http://127.0.0.1:{viewer_side.port}", site.emails["viewer"])
        owner = await signed_in(f"http://127.0.0.1:{owner_side.port}", site.emails["owner"])
        viewer = await session_socket(viewer_side.port, site.dpia_id, viewer_http)
        writer = await YClient.connect(editor_url(owner_side, site.dpia_id, saved=True))
        try:
            await manage_participant(owner, site.dpia_id, site.emails["viewer"], action="remove")
            removed_at = time.monotonic()
            code, reason = await viewer.wait_closed(timeout=10)
            assert time.monotonic() - removed_at < 1.0
            assert code == 4403 and reason is not None and "no longer take part" in reason
            writer.doc.get("values", type=Map)["screening.outcome"] = "after the removal"
            await writer.wait_saved()
            assert viewer.doc.get("values", type=Map).get("screening.outcome") is None
        finally:
            for client in (viewer, writer):
                await client.close()
            await viewer_http.aclose()
            await owner.aclose()


async def test_a_read_link_token_stops_on_another_process_once_its_person_is_removed(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    engine = create_engine(database)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    owner_user = await accounts.user_by_email(site.emails["owner"])
    assert owner_user is not None
    partner = "partner@charity.example"
    person = await DpiaService(sessions, SqlUpdateStore(engine)).invite(
        owner_user, site.dpia_id, partner, "viewer"
    )
    await engine.dispose()
    mail = NotificationMail(sessions, base_url="http://x", mail_from="x@x", secret_key=SECRET)
    link = mail.read_link(person).rsplit("/r/", 1)[1]
    async with processes(2, database, redis_server, tmp_path) as (owner_side, reader_side):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{reader_side.port}") as web:
            token = (await web.get(f"/r/{link}/token")).json()["token"]
        reader = await YClient.connect(
            f"ws://127.0.0.1:{reader_side.port}/ws/dpia/{site.dpia_id}?token={token}"
        )
        owner = await signed_in(f"http://127.0.0.1:{owner_side.port}", site.emails["owner"])
        try:
            await manage_participant(owner, site.dpia_id, partner, action="remove")
            code, _ = await reader.wait_closed(timeout=10)
            assert code == 4403
            retry = await YClient.connect(
                f"ws://127.0.0.1:{owner_side.port}/ws/dpia/{site.dpia_id}?token={token}",
                sync=False,
            )
            assert (await retry.wait_closed())[0] == 4403
        finally:
            await reader.close()
            await owner.aclose()


async def test_suspending_an_account_from_the_command_line_closes_its_editors_on_every_process(
    database: str, redis_server: RedisProcess, tmp_path: Path
) -> None:
    site = await seed_site(database)
    env = scaleout_env(database, redis_server, OPENDPIA_ACCESS_RECHECK_SECONDS="0")
    async with processes(2, database, redis_server, tmp_path, env) as servers:
        editors = []
        for server in servers:
            http = await signed_in(f"http://127.0.0.1:{server.port}", site.emails["editor"])
            editors.append((http, await session_socket(server.port, site.dpia_id, http)))
        try:
            command = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server",
                "suspend-user",
                "--email",
                site.emails["editor"],
                env={**os.environ, **env},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await command.communicate()
            assert command.returncode == 0, output.decode()
            assert b"were told" in output
            for _, editor in editors:
                code, reason = await editor.wait_closed(timeout=10)
                assert code == 4403 and reason is not None and "suspended" in reason
        finally:
            for http, editor in editors:
                await editor.close()
                await http.aclose()
