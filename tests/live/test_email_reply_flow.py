"""End to end: a partner answers a real notification from Gmail and from Outlook, and the
words appear in a connected editor's document within a second, attributed, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import websockets
from pycrdt import Map, XmlElement, XmlFragment, XmlText

from tests.support.bridge import (
    PARTNER,
    PARTNER_NAME,
    BridgeSite,
    Inspector,
    deliver,
    seed_bridge_site,
)
from tests.support.live import WAIT_SECONDS, issue_token, make_settings, serving
from tests.support.site import prepare
from tests.support.smtp import Received, Sink, serve_sink
from tests.support.yclient import YClient

pytestmark = pytest.mark.asyncio
QUIET = 0.3


@pytest.fixture
def bridge_site(database_url: str) -> Iterator[tuple[str, BridgeSite]]:
    prepare(database_url)
    yield database_url, asyncio.run(seed_bridge_site(database_url))


def _gmail_reply(notification: EmailMessage, answer: str) -> bytes:
    """How Gmail answers: top-posted, the attribution wrapped, the original quoted."""
    original = notification.get_body(("plain",))
    assert original is not None
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.get_content().splitlines())
    message = EmailMessage()
    message["From"] = f"{PARTNER_NAME} <{PARTNER}>"
    message["To"] = str(notification["Reply-To"])
    message["Subject"] = f"Re: {notification['Subject']}"
    message["In-Reply-To"] = str(notification["Message-ID"])
    message["References"] = str(notification["Message-ID"])
    message["Message-ID"] = "<CAGmail123@mail.gmail.com>"
    message.set_content(
        f"{answer}\n\nOn Tue, 24 Nov 2026 at 18:30, OpenDPIA <\n"
        f"notifications@opendpia.localhost> wrote:\n\n{quoted}\n"
    )
    message.add_alternative(
        f'<div dir="ltr">{answer}</div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">On Tue, 24 Nov 2026 at 18:30, OpenDPIA &lt;notifications@'
        'opendpia.localhost&gt; wrote:<br></div><blockquote class="gmail_quote">'
        f"{original.get_content()}</blockquote></div>",
        subtype="html",
    )
    return message.as_bytes()


def _outlook_reply(notification: EmailMessage, answer: str) -> bytes:
    """How Outlook answers: top-posted above a From:/Sent: block, the original unquoted."""
    original = notification.get_body(("plain",))
    assert original is not None
    message = EmailMessage()
    message["From"] = f'"Partner, Pat" <{PARTNER.upper()}>'
    message["To"] = str(notification["Reply-To"])
    message["Subject"] = f"RE: {notification['Subject']}"
    message["Message-ID"] = "<AM0PR01MB1234@eurprd01.prod.outlook.com>"
    message["Thread-Topic"] = str(notification["Subject"])
    message.set_content(
        f"{answer}\r\n\r\nKind regards,\r\nPat Partner\r\nInformation Governance Lead\r\n"
        "Partner Borough Council\r\n\r\n________________________________\r\n"
        "From: OpenDPIA <notifications@opendpia.localhost>\r\n"
        "Sent: Tuesday, November 24, 2026 6:30 PM\r\n"
        f"To: Pat Partner <{PARTNER}>\r\n"
        f"Subject: {notification['Subject']}\r\n\r\n{original.get_content()}",
        charset="utf-8",
    )
    return message.as_bytes()


async def _type(client: YClient, words: str) -> None:
    fragment = client.doc.get("field:need.aims", type=XmlFragment)
    paragraph = XmlElement("paragraph")
    fragment.children.append(paragraph)
    text = XmlText()
    paragraph.children.append(text)
    text.insert(0, words)
    await client.wait_saved()


def _email_comments(client: YClient) -> list[dict[str, Any]]:
    comments = client.doc.get("comments", type=Map)
    return [
        dict(value.items())
        for value in comments.values()
        if isinstance(value, Map) and value.get("channel") == "email"
    ]


async def test_gmail_and_outlook_replies_reach_a_connected_editor_once(
    bridge_site: tuple[str, BridgeSite],
) -> None:
    database_url, site = bridge_site
    sink = Sink()
    smtp, smtp_port = await serve_sink(sink)
    settings = make_settings(
        database_url,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}",
        change_quiet_seconds=QUIET,
        base_url="https://opendpia.test",
        run_worker=True,
        run_bridge=True,
    )
    db = Inspector(database_url)
    try:
        with serving(settings) as live:
            dpia = site.site.dpia_id
            token = issue_token(settings, dpia)
            editor = await YClient.attach(
                await websockets.connect(
                    f"ws://127.0.0.1:{live.port}/ws/dpia/{dpia}?token={token}&saved=1"
                )
            )
            try:
                await editor.wait_synced()
                await _type(editor, "We share case notes with the partner borough.")

                async with asyncio.timeout(WAIT_SECONDS):
                    while not any(r.rcpt_tos == [PARTNER] for r in sink.received):
                        await asyncio.sleep(0.05)
                notification: Received = next(r for r in sink.received if r.rcpt_tos == [PARTNER])
                message = notification.message
                assert str(message["Reply-To"]).startswith("reply+")
                assert notification.mail_from.startswith("bounce+")  # VERP

                gmail = _gmail_reply(message, "Yes: only case notes, never health records.")
                delivery = await deliver(settings.bridge_port, gmail, [str(message["Reply-To"])])
                assert delivery.data == 250
                # Live: in the open editor's document, with no reload.
                await editor.wait_until(lambda: len(_email_comments(editor)) == 1)

                outlook = _outlook_reply(message, "And we delete them after six years.")
                await deliver(settings.bridge_port, outlook, [str(message["Reply-To"])])
                await editor.wait_until(lambda: len(_email_comments(editor)) == 2)

                texts = sorted(c["text"] for c in _email_comments(editor))
                assert texts == [
                    "And we delete them after six years.",
                    "Yes: only case notes, never health records.",
                ]
                for comment in _email_comments(editor):
                    assert comment["author"] == site.partner_id
                    assert comment["author_name"] == PARTNER_NAME
                    assert (comment["section"], comment["field"]) == ("need", "aims")
                outlook_comment = next(c for c in _email_comments(editor) if "six" in c["text"])
                assert outlook_comment["signature"].startswith("Kind regards,\nPat Partner")

                # The same Gmail message again (a retrying server): accepted, changes nothing.
                assert (
                    await deliver(settings.bridge_port, gmail, [str(message["Reply-To"])])
                ).data == 250
                rows = await db.settled(3)
                assert [r.outcome for r in rows] == ["merged", "merged", "duplicate"]
                await asyncio.sleep(0.3)
                assert len(_email_comments(editor)) == 2
                log = await _origins(db, dpia)
                assert log.count("email:<CAGmail123@mail.gmail.com>") == 1
            finally:
                await editor.close()
    finally:
        smtp.close()
        await db.close()


async def _origins(db: Inspector, dpia: str) -> list[str]:
    from sqlalchemy import select

    from server.storage.models import DocumentUpdate

    async with db.sessions() as session:
        rows = await session.scalars(
            select(DocumentUpdate.origin).where(
                DocumentUpdate.document_id == dpia, DocumentUpdate.channel == "email"
            )
        )
        return list(rows)
