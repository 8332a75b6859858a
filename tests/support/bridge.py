"""Talking to the email bridge as a mail server would, and reading what it did."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
from pycrdt import Array, Map
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.bootstrap import notification_service
from server.services.accounts import CurrentUser
from server.services.dpias import DpiaService
from server.settings import Settings
from server.storage.database import create_engine
from server.storage.models import (
    InboundMessage,
    Membership,
    OutboxMessage,
    Participant,
    ReplyToken,
    User,
)
from server.storage.updates import SqlUpdateStore
from tests.support.live import WAIT_SECONDS, LiveServer, make_settings, serving
from tests.support.site import Site, prepare, seed_site

PARTNER = "pat.partner@partner.example"
TRUSTED = "mx.opendpia.test"  # the authserv-id the test bridge trusts
PARTNER_NAME = "Pat Partner"


@dataclass
class BridgeSite:
    site: Site
    partner_id: int
    other_dpia: str
    other_partner_id: int


async def seed_bridge_site(database_url: str) -> BridgeSite:
    """The usual site, plus an email-only commenter on it and on a second DPIA."""
    site = await seed_site(database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        dpias = DpiaService(sessions, SqlUpdateStore(engine))
        async with sessions() as session:
            user = await session.scalar(select(User).where(User.email == site.emails["owner"]))
            assert user is not None
            organisation = await session.scalar(
                select(Membership.organisation_id).where(Membership.user_id == user.id)
            )
        assert organisation is not None
        owner = CurrentUser(user.id, user.email, user.name, (organisation,))
        partner_id = await dpias.invite(owner, site.dpia_id, PARTNER, "commenter", PARTNER_NAME)
        other = await dpias.create(owner, "Another DPIA", organisation)
        other_partner = await dpias.invite(owner, other, PARTNER, "commenter", PARTNER_NAME)
    finally:
        await engine.dispose()
    return BridgeSite(site, partner_id, other, other_partner)


async def reply_address(
    settings: Settings,
    participant_id: int,
    dpia_id: str,
    section: str = "need",
    field: str | None = None,
) -> str:
    """A reply address issued exactly as a notification would issue it."""
    engine = create_engine(settings.database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        mail = notification_service(settings, sessions, None).mail
        async with sessions.begin() as session:
            return mail.issue_reply(session, participant_id, dpia_id, section, field)
    finally:
        await engine.dispose()


def reply(
    to: str,
    body: str,
    *,
    sender: str = PARTNER,
    subject: str = "Re: DPIA change",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain="partner.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


@dataclass
class Delivery:
    rcpt: list[int] = field(default_factory=list)
    rcpt_messages: list[str] = field(default_factory=list)
    data: int | None = None
    data_message: str = ""


async def deliver(
    port: int,
    raw: bytes,
    recipients: list[str],
    *,
    envelope_from: str = PARTNER,
    lmtp: bool = False,
    starttls: ssl.SSLContext | None = None,
) -> Delivery:
    """One SMTP (or LMTP) transaction, recording each answer instead of raising."""
    result = Delivery()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=WAIT_SECONDS, start_tls=False)
    await client.connect()
    try:
        if lmtp:
            await client.execute_command(b"LHLO", b"test.example")
        else:
            await client.ehlo()
            if starttls is not None:
                await client.starttls(tls_context=starttls)
                await client.ehlo()
        await client.mail(envelope_from)
        for recipient in recipients:
            try:
                answer = await client.rcpt(recipient)
                result.rcpt.append(answer.code)
                result.rcpt_messages.append(answer.message)
            except aiosmtplib.SMTPRecipientRefused as error:
                result.rcpt.append(error.code)
                result.rcpt_messages.append(error.message)
        if not any(code == 250 for code in result.rcpt):
            return result
        try:
            answer = await client.data(raw)
            result.data, result.data_message = answer.code, answer.message
        except aiosmtplib.SMTPResponseException as error:
            result.data, result.data_message = error.code, error.message
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
    return result


class Inspector:
    """Reads the bridge's records and the documents from the database."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self) -> None:
        await self.engine.dispose()

    async def rows(self) -> list[InboundMessage]:
        async with self.sessions() as session:
            return list(await session.scalars(select(InboundMessage).order_by(InboundMessage.id)))

    async def settled(self, count: int, timeout: float = WAIT_SECONDS) -> list[InboundMessage]:
        """Wait until ``count`` rows exist and none is pending."""
        async with asyncio.timeout(timeout):
            while True:
                rows = await self.rows()
                if len(rows) >= count and all(r.status == "done" for r in rows):
                    return rows
                await asyncio.sleep(0.05)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.sessions() as session:
            return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def comments(self, dpia_id: str) -> dict[str, dict[str, Any]]:
        stored = await SqlUpdateStore(self.engine).load(dpia_id)
        assert stored is not None
        doc = stored.to_doc()
        comments = doc.get("comments", type=Map)
        out: dict[str, dict[str, Any]] = {}
        for key, value in comments.items():
            entry = dict(value.items()) if isinstance(value, Map) else {"value": value}
            for name, item in list(entry.items()):
                if isinstance(item, Array):
                    entry[name] = [dict(v.items()) if isinstance(v, Map) else v for v in item]
            out[key] = entry
        return out

    async def expire_replies(self, participant_id: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(ReplyToken)
                .where(ReplyToken.participant_id == participant_id)
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )

    async def revoke_replies(self, participant_id: int) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(ReplyToken)
                .where(ReplyToken.participant_id == participant_id)
                .values(revoked=True)
            )

    async def remove_participant(self, participant_id: int) -> None:
        async with self.sessions.begin() as session:
            participant = await session.get(Participant, participant_id)
            assert participant is not None
            await session.delete(participant)

    async def set_role(self, participant_id: int, role: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                update(Participant).where(Participant.id == participant_id).values(role=role)
            )


@dataclass
class Env:
    """A running app with its bridge, a seeded site, and a reader of what the bridge did."""

    settings: Settings
    live: LiveServer
    site: BridgeSite
    db: Inspector

    @property
    def port(self) -> int:
        return self.settings.bridge_port

    @property
    def dpia(self) -> str:
        return self.site.site.dpia_id

    async def address(self, section: str = "need", field: str | None = None) -> str:
        return await reply_address(self.settings, self.site.partner_id, self.dpia, section, field)


@contextlib.asynccontextmanager
async def bridge_env(sqlite_url: str, *, child: bool = False) -> AsyncIterator[Env]:
    """The app under uvicorn with its bridge; answers stay in the outbox (no worker).

    ``child``: the bridge runs in serve's child process, as it does by default outside the
    tests; otherwise on the server's loop (see ``make_settings``)."""
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(
        sqlite_url,
        bridge_trusted_authserv_ids=TRUSTED,
        bridge_max_bytes=256 * 1024,
        smtp_url="smtp://127.0.0.1:9",
        run_worker=False,
        base_url="https://opendpia.test",
        bridge_process=child,
    )
    inspector = Inspector(sqlite_url)
    try:
        with serving(settings) as live:
            yield Env(settings, live, site, inspector)
    finally:
        await inspector.close()


def texts(comments: dict[str, dict[str, Any]]) -> list[str]:
    return [str(c["text"]) for c in comments.values()]


@contextlib.asynccontextmanager
async def bridge_process(
    env: dict[str, str], port: int, log_path: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``opendpia bridge`` as its own process, once it listens on ``port``; stopped with
    SIGTERM on the way out (its exit code is then in ``returncode``)."""
    with log_path.open("wb") as log:
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "server", "bridge"],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with asyncio.timeout(2 * WAIT_SECONDS):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                except OSError:
                    assert process.poll() is None, _text_of(log_path)
                    await asyncio.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, WAIT_SECONDS)


def _text_of(path: Path) -> str:
    return path.read_text()
