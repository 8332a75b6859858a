"""The mail worker as a process: killed mid-batch, restarted; and the development mailbox."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.mail.compose import Outgoing, compose, new_message_id
from server.services.outbox import enqueue
from server.storage.database import create_engine, migrate
from tests.support.live import ROOT, WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.site import PASSWORD, signed_in
from tests.support.smtp import Sink, serve_sink

pytestmark = pytest.mark.asyncio


def _outgoing(i: int) -> Outgoing:
    return Outgoing(
        sender="notifications@opendpia.test",
        recipient=f"person{i}@partner.example",
        recipient_name=f"Person {i}",
        subject=f"Change {i}",
        text=f"Change number {i}",
        html=None,
        message_id=new_message_id("opendpia.test"),
    )


async def _enqueue(database_url: str, count: int) -> set[str]:
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    ids = set()
    async with sessions.begin() as session:
        for i in range(count):
            mail = _outgoing(i)
            enqueue(
                session,
                sender=mail.sender,
                recipient=mail.recipient,
                message=compose(mail, installation="test"),
                message_id=mail.message_id,
            )
            ids.add(mail.message_id)
    await engine.dispose()
    return ids


def _worker(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": database_url,
        "OPENDPIA_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "OPENDPIA_MAIL_LEASE_SECONDS": "1",
        "OPENDPIA_MAIL_RETRY_SECONDS": "0.05",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
async def test_a_worker_killed_mid_batch_loses_nothing_and_changes_nothing(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}"
    await asyncio.to_thread(migrate, database_url)
    expected = await _enqueue(database_url, 60)
    sink = Sink(delay=0.02)
    server, port = await serve_sink(sink)
    worker = _worker(database_url, port, tmp_path / "worker.log")
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while len(sink.received) < 15:
                await asyncio.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert 15 <= len(sink.received) < 60, "the kill did not land mid-batch"
        worker = _worker(database_url, port, tmp_path / "worker.log")
        async with asyncio.timeout(2 * WAIT_SECONDS):
            while set(sink.message_ids()) != expected:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.5)  # past the lease: anything still to be resent is resent
    finally:
        worker.kill()
        worker.wait(10)
        server.close()
    by_id: dict[str, set[bytes]] = {}
    for received in sink.received:
        by_id.setdefault(str(received.message["Message-ID"]), set()).add(received.raw)
    assert set(by_id) == expected
    # A message caught between sending and recording may arrive twice, but as the same
    # message (same Message-ID, same bytes), which a mail client shows once.
    assert all(len(versions) == 1 for versions in by_id.values())


async def test_development_mail_is_caught_and_readable_at_dev_mail(sqlite_url: str) -> None:
    settings = replace(make_settings(sqlite_url), env="development")
    with serving(settings) as live:
        await _enqueue_via(live)
        live.call(_administrator(live))
        base = f"http://127.0.0.1:{live.port}"
        client = await signed_in(base, "admin@camden.example")
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                while "Ünïcode &lt;subject&gt;" not in (
                    listing := (await client.get("/dev/mail")).text
                ):
                    await asyncio.sleep(0.1)
            link = listing.split('href="/dev/mail/')[1].split('"')[0]
            one = await client.get(f"/dev/mail/{link}")
            assert one.status_code == 200
            assert "Auto-Submitted" in one.text and "Hello from the outbox" in one.text
            assert "<script>" not in one.text
        finally:
            await client.aclose()
    with serving(make_settings(sqlite_url)) as test_env:  # not development: no such page
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{test_env.port}", timeout=WAIT_SECONDS
        ) as client:
            assert (await client.get("/dev/mail")).status_code == 404


async def _administrator(live: LiveServer) -> None:
    """The development mailbox is for administrators (it holds magic links)."""
    accounts = live.runtime.accounts
    await accounts.create_organisation("CAM", "London Borough of Camden")
    await accounts.create_user("admin@camden.example", "Ada Admin", PASSWORD, "CAM", admin=True)


async def _enqueue_via(live: LiveServer) -> None:
    mail = Outgoing(
        sender="notifications@opendpia.test",
        recipient="partner@charity.example",
        recipient_name="Jo Martin",
        subject="Ünïcode <subject>",
        text="Hello from the outbox",
        html="<p>Hello <script>alert(1)</script></p>",
        message_id=new_message_id("opendpia.test"),
    )

    async def add() -> None:
        async with live.runtime.sessions.begin() as session:
            enqueue(
                session,
                sender=mail.sender,
                recipient=mail.recipient,
                message=compose(mail, installation="test"),
                message_id=mail.message_id,
            )

    await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(add(), live.loop))  # type: ignore[arg-type]
