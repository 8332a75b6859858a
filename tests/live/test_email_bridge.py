"""The email bridge over real SMTP: every case of email-cases.md, against the running app."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import trustme
from sqlalchemy import update

from server.domain.replies import ReplyKeys
from server.services.inbound import InboundStore
from server.settings import Settings
from server.storage.models import InboundMessage, MailPreference
from tests.support.bridge import (
    PARTNER,
    PARTNER_NAME,
    BridgeSite,
    Inspector,
    deliver,
    reply,
    reply_address,
    seed_bridge_site,
)
from tests.support.live import LiveServer, free_port, make_settings, serving
from tests.support.site import csrf_field, prepare, signed_in
from tests.support.smtp import Sink, serve_sink

pytestmark = pytest.mark.asyncio
TRUSTED = "mx.opendpia.test"


@dataclass
class Env:
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


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(
        sqlite_url,
        bridge_trusted_authserv_ids=TRUSTED,
        bridge_max_bytes=256 * 1024,
        smtp_url="smtp://127.0.0.1:9",  # answers stay in the outbox, where the tests read them
        run_worker=False,
        base_url="https://opendpia.test",
    )
    inspector = Inspector(sqlite_url)
    with serving(settings) as live:
        yield Env(settings, live, site, inspector)
    await inspector.close()


def _texts(comments: dict[str, dict[str, object]]) -> list[str]:
    return [str(c["text"]) for c in comments.values()]


async def test_a_reply_is_posted_as_a_comment_by_the_participant_on_the_section(env: Env) -> None:
    to = await env.address("need", "aims")
    raw = reply(to, "We keep the records for six years.\n\nOn Mon, OpenDPIA wrote:\n> old text\n")
    delivery = await deliver(env.port, raw, [to])
    assert delivery.rcpt == [250] and delivery.data == 250
    [row] = await env.db.settled(1)
    assert (row.outcome, row.participant_id, row.section) == ("merged", env.site.partner_id, "need")
    comments = await env.db.comments(env.dpia)
    [comment] = [c for c in comments.values() if c.get("channel") == "email"]
    assert comment["text"] == "We keep the records for six years."
    assert comment["author"] == env.site.partner_id
    assert comment["author_name"] == PARTNER_NAME
    assert (comment["section"], comment["field"]) == ("need", "aims")


async def test_unknown_forged_and_malformed_reply_addresses_are_refused_at_rcpt(env: Env) -> None:
    good = await env.address()
    local, _, domain = good.partition("@")
    token, key_id, mac = local.removeprefix("reply+").split(".")
    forged = f"reply+{token}.{key_id}.{'a' * 26}@{domain}"
    unknown = f"reply+{'b' * 26}.{key_id}.{mac}@{domain}"
    others = ["reply+nonsense@" + domain, "someone@example.org", f"bounce+1.k1.{'c' * 26}@{domain}"]
    delivery = await deliver(env.port, reply(good, "hello"), [forged, unknown, *others])
    assert delivery.rcpt == [550] * 5
    assert delivery.data is None
    assert await env.db.rows() == []


async def test_a_reply_address_is_case_insensitive(env: Env) -> None:
    to = (await env.address()).upper()
    delivery = await deliver(env.port, reply(to, "Shouting, but fine."), [to])
    assert delivery.data == 250
    [row] = await env.db.settled(1)
    assert row.outcome == "merged"


async def test_the_same_message_twice_is_accepted_and_posted_once(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "Only once, please.", message_id="<once@partner.example>")
    first = await deliver(env.port, raw, [to])
    await env.db.settled(1)
    second = await deliver(env.port, raw, [to])
    assert (first.data, second.data) == (250, 250)
    rows = await env.db.settled(2)
    assert [r.outcome for r in rows] == ["merged", "duplicate"]
    assert _texts(await env.db.comments(env.dpia)).count("Only once, please.") == 1


async def test_without_message_id_the_same_bytes_are_a_duplicate(env: Env) -> None:
    to = await env.address()
    message = EmailMessage()
    message["From"] = PARTNER
    message["To"] = to
    message["Subject"] = "no id"
    message.set_content("No Message-ID here.")
    raw = message.as_bytes()
    for _ in range(2):
        assert (await deliver(env.port, raw, [to])).data == 250
    rows = await env.db.settled(2)
    assert [r.outcome for r in rows] == ["merged", "duplicate"]
    assert rows[0].message_key.startswith("sha256:")


async def test_a_forged_sender_is_not_posted_and_gets_nothing_back(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "Let me in.", sender="mallory@evil.example")
    assert (await deliver(env.port, raw, [to], envelope_from="mallory@evil.example")).data == 250
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "not the address" in row.reason
    assert await env.db.outbox() == []
    assert all(c.get("channel") != "email" for c in (await env.db.comments(env.dpia)).values())


async def test_an_authenticated_stranger_is_told_to_ask_for_an_invitation_once_a_day(
    env: Env,
) -> None:
    to = await env.address()
    results = (
        f"{TRUSTED}; spf=pass smtp.mailfrom=camden.example; dmarc=pass header.from=camden.example"
    )
    for _ in range(2):
        raw = reply(
            to,
            "I am a colleague.",
            sender="colleague@camden.example",
            headers={"Authentication-Results": results},
        )
        await deliver(env.port, raw, [to], envelope_from="colleague@camden.example")
    rows = await env.db.settled(2)
    assert [r.outcome for r in rows] == ["refused", "refused"]
    [answer] = await env.db.outbox()
    assert answer.recipient == "colleague@camden.example"
    assert answer.sender == ""  # the null reverse-path
    assert b"Auto-Submitted: auto-replied" in answer.message
    assert b"invite you" in answer.message


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Out of office"),
        ({"X-Autoreply": "yes"}, "Re: DPIA"),
        ({"Precedence": "bulk"}, "Re: DPIA"),
        ({}, "Abwesenheitsnotiz: Re: DPIA"),
        ({}, "Réponse automatique : DPIA"),
        ({"List-Id": "<partners.lists.example>"}, "Re: DPIA"),
        ({"X-OpenDPIA-Loop": "opendpia.test"}, "Re: DPIA"),
    ],
)
async def test_automatic_list_and_looping_mail_is_dropped_without_an_answer(
    env: Env, headers: dict[str, str], subject: str
) -> None:
    to = await env.address()
    raw = reply(to, "I am away until Monday.", subject=subject, headers=headers)
    assert (await deliver(env.port, raw, [to])).data == 250
    [row] = await env.db.settled(1)
    assert row.outcome == "dropped", row.reason
    assert await env.db.outbox() == []


async def test_mail_from_our_own_address_is_dropped(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "Echo", sender="notifications@opendpia.localhost")
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "dropped" and "our own" in row.reason


async def test_an_expired_address_is_refused_with_a_reason_and_a_link(env: Env) -> None:
    to = await env.address()
    await env.db.expire_replies(env.site.partner_id)
    assert (await deliver(env.port, reply(to, "Late answer."), [to])).data == 250
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "expired" in row.reason
    [answer] = await env.db.outbox()
    assert answer.recipient == PARTNER
    assert b"expired" in answer.message and b"/r/" in answer.message


async def test_a_withdrawn_address_is_refused(env: Env) -> None:
    to = await env.address()
    await env.db.revoke_replies(env.site.partner_id)
    await deliver(env.port, reply(to, "Still here?"), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "withdrawn" in row.reason


async def test_a_viewer_cannot_comment_by_email(env: Env) -> None:
    to = await env.address()
    await env.db.set_role(env.site.partner_id, "viewer")
    await deliver(env.port, reply(to, "Viewer speaking."), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "viewer" in row.reason


async def test_a_locked_dpia_refuses_replies(env: Env) -> None:
    to = await env.address()
    path = env.settings.sqlite_path()
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE dpias SET status = 'approved' WHERE id = ?", (env.dpia,))
    await deliver(env.port, reply(to, "After approval."), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "approved" in row.reason


async def test_the_token_wins_over_references_to_another_dpia(env: Env) -> None:
    to = await env.address()
    references = f"<n.1@opendpia.localhost> <{env.site.other_dpia.lower()}@opendpia.localhost>"
    raw = reply(to, "For the first DPIA.", headers={"References": references})
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.dpia_id == env.dpia and row.outcome == "merged"
    assert "For the first DPIA." in _texts(await env.db.comments(env.dpia))
    assert "For the first DPIA." not in _texts(await env.db.comments(env.site.other_dpia))


async def test_a_sender_with_two_addresses_in_from_is_refused(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "x").replace(
        f"From: {PARTNER}".encode(), f"From: {PARTNER} <mallory@evil.example>".encode()
    )
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "From" in row.reason
    assert await env.db.outbox() == []


async def test_dmarc_failure_from_our_trusted_server_holds_the_reply(env: Env) -> None:
    to = await env.address()
    results = f"{TRUSTED}; dmarc=fail (p=reject) header.from=partner.example"
    raw = reply(to, "Held words.", headers={"Authentication-Results": results})
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "held"
    assert "Held words." not in _texts(await env.db.comments(env.dpia))
    assert await env.db.outbox() == []


async def test_dmarc_results_from_anyone_else_are_ignored(env: Env) -> None:
    to = await env.address()
    results = "mx.evil.example; dmarc=fail header.from=partner.example"
    raw = reply(to, "Fine words.", headers={"Authentication-Results": results})
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "merged"


async def test_an_oversized_message_is_refused_at_data_with_552(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "x" * (300 * 1024))
    delivery = await deliver(env.port, raw, [to])
    assert delivery.data == 552
    assert await env.db.rows() == []


async def test_a_storage_failure_answers_451_and_the_retry_is_accepted(env: Env) -> None:
    to = await env.address()
    raw = reply(to, "Try me again.")
    path = env.settings.sqlite_path()
    assert path is not None
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE inbound_messages RENAME TO inbound_away")
    try:
        delivery = await deliver(env.port, raw, [to])
    finally:
        with sqlite3.connect(path) as connection:
            connection.execute("ALTER TABLE inbound_away RENAME TO inbound_messages")
    assert delivery.data == 451
    assert (await deliver(env.port, raw, [to])).data == 250
    [row] = await env.db.settled(1)
    assert row.outcome == "merged"


async def test_lmtp_answers_data_once_per_recipient(sqlite_url: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url, bridge_lmtp_port=free_port(), run_worker=False)
    inspector = Inspector(sqlite_url)
    try:
        with serving(settings):
            first = await reply_address(settings, site.partner_id, site.site.dpia_id, "need")
            second = await reply_address(settings, site.partner_id, site.site.dpia_id, "risks")
            answers = await _lmtp(
                settings.bridge_lmtp_port, reply(first, "Both sections."), [first, second]
            )
            assert answers == [b"250", b"250"]
            rows = await inspector.settled(2)
            assert sorted(r.section or "" for r in rows) == ["need", "risks"]
            assert {r.outcome for r in rows} == {"merged"}
    finally:
        await inspector.close()


async def _lmtp(port: int, raw: bytes, recipients: list[str]) -> list[bytes]:
    """A raw LMTP conversation: no client library reads LMTP's one DATA answer per recipient."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def answer() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line[:3]

    async def command(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        await writer.drain()
        return await answer()

    try:
        assert await answer() == b"220"
        assert await command(b"LHLO test.example") == b"250"
        assert await command(f"MAIL FROM:<{PARTNER}>".encode()) == b"250"
        for recipient in recipients:
            assert await command(f"RCPT TO:<{recipient}>".encode()) == b"250"
        assert await command(b"DATA") == b"354"
        body = b"\r\n".join(
            b"." + line if line.startswith(b".") else line for line in raw.splitlines()
        )
        writer.write(body + b"\r\n.\r\n")
        await writer.drain()
        return [await answer() for _ in recipients]
    finally:
        writer.close()


def _with_attachments(to: str, files: list[tuple[str, str, bytes]]) -> bytes:
    message = EmailMessage()
    message["From"] = PARTNER
    message["To"] = to
    message["Subject"] = "Re: files"
    message["Message-ID"] = "<files@partner.example>"
    message.set_content("The signed agreement is attached.")
    for name, content_type, data in files:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


async def test_allowed_attachments_are_kept_as_downloads_and_others_refused_with_a_note(
    env: Env,
) -> None:
    to = await env.address()
    pdf = b"%PDF-1.4 agreement"
    raw = _with_attachments(
        to,
        [
            ("../../etc/agreement\u202efdp.pdf", "application/pdf", pdf),
            ("setup.exe", "application/x-msdownload", b"MZ..."),
        ],
    )
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "merged"
    [comment] = [c for c in (await env.db.comments(env.dpia)).values() if c["channel"] == "email"]
    assert "The signed agreement is attached." in comment["text"]
    assert (
        "[Not attached: setup.exe (application/x-msdownload files are not accepted)]"
        in (comment["text"])
    )
    [attached] = comment["attachments"]
    assert "/" not in attached["name"] and "\u202e" not in attached["name"]
    assert attached["name"].endswith(".pdf")

    owner = await signed_in(f"http://127.0.0.1:{env.live.port}", env.site.site.emails["owner"])
    outsider = await signed_in(
        f"http://127.0.0.1:{env.live.port}", env.site.site.emails["outsider"]
    )
    try:
        url = f"/dpias/{env.dpia}/attachments/{attached['id']}"
        response = await owner.get(url)
        assert response.status_code == 200 and response.content == pdf
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["content-type"] == "application/octet-stream"
        assert (await outsider.get(url)).status_code == 404
    finally:
        await owner.aclose()
        await outsider.aclose()


def _bounce(to: str, status: str, action: str) -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes one."""
    return (
        f"From: MAILER-DAEMON@partner.example (Mail Delivery System)\r\n"
        f"To: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='partner.example')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n'
        "\r\n--B1\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system at host mx.partner.example.\r\n"
        "\r\n--B1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.partner.example\r\n\r\n"
        f"Final-Recipient: rfc822; {PARTNER}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        "\r\n--B1--\r\n"
    ).encode()


async def test_hard_bounces_pause_notifications_and_owners_see_it(env: Env) -> None:
    keys = ReplyKeys(
        env.settings.secret_key, [env.settings.reply_key_ids], env.settings.reply_domain
    )
    bounce_to = keys.bounce_address(env.site.partner_id)
    soft = _bounce(bounce_to, "4.2.2", "delayed")
    assert (await deliver(env.port, soft, [bounce_to], envelope_from="")).data == 250
    for _ in range(3):
        await deliver(
            env.port, _bounce(bounce_to, "5.1.1", "failed"), [bounce_to], envelope_from=""
        )
    rows = await env.db.settled(4)
    assert [r.outcome for r in rows] == ["bounce"] * 4
    assert "soft bounce" in rows[0].reason
    # The third hard bounce pauses mail (bounces are processed side by side: any order).
    assert sum("paused" in r.reason for r in rows) == 1
    assert await env.db.outbox() == []  # a bounce is never answered

    owner = await signed_in(f"http://127.0.0.1:{env.live.port}", env.site.site.emails["owner"])
    try:
        page = (await owner.get(f"/dpias/{env.dpia}/inbound")).text
        assert "<strong>paused</strong>" in page and PARTNER in page
        # Paused: a comment that would have emailed the partner now does not.
        response = await owner.post(
            f"/api/dpias/{env.dpia}/comments",
            json={"section": "need", "text": "Anyone there?"},
            headers={"x-csrftoken": owner.cookies["csrftoken"]},
        )
        assert response.status_code == 201
        assert [m.recipient for m in await env.db.outbox() if m.recipient == PARTNER] == []
    finally:
        await owner.aclose()


async def test_unsubscribe_as_the_whole_reply_stops_notifications(env: Env) -> None:
    to = await env.address()
    await deliver(env.port, reply(to, "Unsubscribe\n\nOn Mon, OpenDPIA wrote:\n> x"), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "unsubscribed"
    async with env.db.sessions() as session:
        preference = await session.get(MailPreference, env.site.partner_id)
    assert preference is not None and preference.mode == "off"


async def test_an_owner_posts_or_discards_a_held_reply_and_others_cannot(env: Env) -> None:
    to = await env.address()
    results = f"{TRUSTED}; dmarc=fail header.from=partner.example"
    for words in ("Genuine after all.", "Spoofed."):
        raw = reply(to, words, headers={"Authentication-Results": results})
        await deliver(env.port, raw, [to])
    first, second = await env.db.settled(2)
    assert (first.outcome, second.outcome) == ("held", "held")
    base = f"http://127.0.0.1:{env.live.port}"
    owner = await signed_in(base, env.site.site.emails["owner"])
    editor = await signed_in(base, env.site.site.emails["editor"])
    try:
        url = f"/dpias/{env.dpia}/inbound"
        assert (await editor.get(url)).status_code == 403
        page = await owner.get(url)
        assert page.status_code == 200 and "Held for a decision" in page.text
        token = csrf_field(page.text)
        for row, action in ((first, "release"), (second, "discard")):
            answer = await owner.post(
                url, data={"csrftoken": token, "id": row.id, "action": action}
            )
            assert answer.status_code == 303
        rows = await env.db.settled(2)
        assert [r.outcome for r in rows] == ["merged", "discarded"]
        texts = _texts(await env.db.comments(env.dpia))
        assert "Genuine after all." in texts and "Spoofed." not in texts
    finally:
        await owner.aclose()
        await editor.aclose()


async def test_starttls_is_offered_with_a_certificate(sqlite_url: str, tmp_path: Path) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.private_key_pem.write_to_path(str(key))
    certificate.cert_chain_pems[0].write_to_path(str(cert))
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(
        sqlite_url, bridge_tls_cert=str(cert), bridge_tls_key=str(key), run_worker=False
    )
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    inspector = Inspector(sqlite_url)
    try:
        with serving(settings):
            to = await reply_address(settings, site.partner_id, site.site.dpia_id)
            raw = reply(to, "Over TLS.")
            delivery = await deliver(settings.bridge_port, raw, [to], starttls=client_context)
            assert delivery.data == 250
            [row] = await inspector.settled(1)
            assert row.outcome == "merged"
    finally:
        await inspector.close()


async def test_messages_stored_before_a_crash_are_processed_after_the_restart(
    sqlite_url: str,
) -> None:
    """Rows left pending (never claimed, or claimed by a process that died) are taken up."""
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url, run_worker=False)
    inspector = Inspector(sqlite_url)
    try:
        to = await reply_address(settings, site.partner_id, site.site.dpia_id)
        store = InboundStore(inspector.sessions, ReplyKeys(settings.secret_key, ["k1"], "x"))
        for words in ("Stored, then the power went.", "Claimed, then the process died."):
            await store.store(
                transport="smtp",
                peer="127.0.0.1:1",
                envelope_from=PARTNER,
                recipients=[to],
                raw=reply(to, words),
            )
        async with inspector.sessions.begin() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == 2)
                .values(attempts=1, claimed_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        with serving(settings):
            rows = await inspector.settled(2)
        assert [r.outcome for r in rows] == ["merged", "merged"]
        texts = _texts(await inspector.comments(site.site.dpia_id))
        assert "Stored, then the power went." in texts
        assert "Claimed, then the process died." in texts
    finally:
        await inspector.close()


async def test_a_reply_with_nothing_new_is_refused_as_empty_with_one_answer(env: Env) -> None:
    to = await env.address()
    body = "On Mon, 23 Nov 2026 at 10:00, OpenDPIA wrote:\n> Olive changed the aims\n"
    await deliver(env.port, reply(to, body), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "nothing was left" in row.reason
    [answer] = await env.db.outbox()
    assert answer.recipient == PARTNER and answer.sender == ""


async def test_replies_beyond_the_hourly_limit_are_refused(sqlite_url: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url, bridge_replies_per_hour=2, run_worker=False)
    inspector = Inspector(sqlite_url)
    try:
        with serving(settings):
            to = await reply_address(settings, site.partner_id, site.site.dpia_id)
            for number in range(3):
                await deliver(settings.bridge_port, reply(to, f"Reply {number}."), [to])
                await inspector.settled(number + 1)
            rows = await inspector.settled(3)
        assert [r.outcome for r in rows] == ["merged", "merged", "refused"]
        assert "more than 2 replies in an hour" in rows[2].reason
    finally:
        await inspector.close()


async def test_a_reply_about_a_section_that_has_gone_goes_to_the_whole_dpia(env: Env) -> None:
    to = await env.address("retired-section", "old-field")
    await deliver(env.port, reply(to, "About the whole thing."), [to])
    [row] = await env.db.settled(1)
    assert (row.outcome, row.section, row.field) == ("merged", "dpia", None)
    [comment] = [c for c in (await env.db.comments(env.dpia)).values() if c["channel"] == "email"]
    assert comment["section"] == "dpia" and "field" not in comment


async def test_our_answer_leaves_with_an_empty_envelope_sender(sqlite_url: str) -> None:
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    sink = Sink()
    smtp, smtp_port = await serve_sink(sink)
    settings = make_settings(sqlite_url, smtp_url=f"smtp://127.0.0.1:{smtp_port}")
    inspector = Inspector(sqlite_url)
    try:
        with serving(settings):
            to = await reply_address(settings, site.partner_id, site.site.dpia_id)
            await inspector.expire_replies(site.partner_id)
            await deliver(settings.bridge_port, reply(to, "Too late?"), [to])
            async with asyncio.timeout(10):
                while not sink.received:
                    await asyncio.sleep(0.05)
        [answer] = sink.received
        assert answer.mail_from == "<>" and answer.rcpt_tos == [PARTNER]  # MAIL FROM:<>
        assert answer.message["Auto-Submitted"] == "auto-replied"
        assert "expired" in answer.message.get_body(("plain",)).get_content()
    finally:
        smtp.close()
        await inspector.close()


async def test_a_taken_bridge_port_does_not_stop_the_embedded_web_app(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(sqlite_url, bridge_port=port, run_worker=False)
        with caplog.at_level(logging.ERROR, logger="opendpia.bridge"), serving(settings) as live:
            async with httpx.AsyncClient() as client:
                answer = await client.get(f"http://127.0.0.1:{live.port}/healthz")
            assert answer.status_code == 200
        assert any("cannot listen for SMTP" in r.getMessage() for r in caplog.records)


async def test_opendpia_bridge_runs_on_its_own(sqlite_url: str, tmp_path: Path) -> None:
    """The production shape: ``opendpia bridge`` as its own process, next to the database."""
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    port = free_port()
    env = {
        **os.environ,
        "OPENDPIA_ENV": "test",
        "OPENDPIA_DATABASE_URL": sqlite_url,
        "OPENDPIA_BRIDGE_PORT": str(port),
        "OPENDPIA_SMTP_URL": "smtp://127.0.0.1:9",
        "OPENDPIA_LOG_LEVEL": "info",
    }
    settings = make_settings(sqlite_url)
    to = await reply_address(settings, site.partner_id, site.site.dpia_id)
    inspector = Inspector(sqlite_url)
    with (tmp_path / "bridge.log").open("wb") as log:
        process = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "server", "bridge"],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    break
                except OSError:
                    assert process.poll() is None, (tmp_path / "bridge.log").read_text()
                    await asyncio.sleep(0.1)
        assert (await deliver(port, reply(to, "Via the bridge process."), [to])).data == 250
        [row] = await inspector.settled(1, timeout=15)
        assert row.outcome == "merged"
        assert "Via the bridge process." in _texts(await inspector.comments(site.site.dpia_id))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, (tmp_path / "bridge.log").read_text()
        await inspector.close()


async def test_a_removed_participant_is_refused_at_rcpt_with_the_reason_and_a_link(
    env: Env,
) -> None:
    to = await env.address()
    await env.db.remove_participant(env.site.partner_id)
    delivery = await deliver(env.port, reply(to, "Am I still in?"), [to])
    assert delivery.rcpt == [550]
    assert "no longer takes part" in delivery.rcpt_messages[0]
    assert env.settings.base_url in delivery.rcpt_messages[0]
    assert await env.db.rows() == []


async def test_a_burst_of_replies_is_one_notification_per_person_not_one_each(env: Env) -> None:
    to = await env.address()
    replies = [reply(to, f"Point {n} of 5.") for n in range(5)]
    await asyncio.gather(*(deliver(env.port, raw, [to]) for raw in replies))
    await env.db.settled(5)
    owner = env.site.site.emails["owner"]

    def told(subjects: list[str]) -> int:
        """How many comments the owner's emails speak of ("commented" is one)."""
        return sum(
            int(m.group(1)) if (m := re.search(r"added (\d+) comments", s)) else 1 for s in subjects
        )

    async with asyncio.timeout(10):
        while (
            told(subjects := [m.subject for m in await env.db.outbox() if m.recipient == owner]) < 5
        ):
            await asyncio.sleep(0.1)
    assert told(subjects) == 5
    assert 1 <= len(subjects) < 5, subjects  # together, not one email per reply
