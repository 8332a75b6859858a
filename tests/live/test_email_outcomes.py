"""What the bridge does with accepted mail: attachments, bounces, unsubscribing, held replies,
answers and their limits, restarts, TLS and notifications, against the running app."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import pytest_asyncio
import trustme
from sqlalchemy import update

from server.domain.replies import ReplyKeys
from server.services.inbound import InboundStore
from server.storage.models import InboundMessage, MailPreference
from tests.support.bridge import (
    PARTNER,
    TRUSTED,
    Env,
    Inspector,
    bridge_env,
    deliver,
    reply,
    reply_address,
    seed_bridge_site,
    texts,
)
from tests.support.live import WAIT_SECONDS, make_settings, serving
from tests.support.site import csrf_field, prepare, signed_in
from tests.support.smtp import Sink, serve_sink

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url) as running:
        yield running


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
            # a program whose name reads as a PDF and which says it is one
            ("invoice\u202efdp.exe", "application/pdf", b"MZ\x90\x00" + b"\x00" * 60),
        ],
    )
    await deliver(env.port, raw, [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "merged"
    [comment] = [c for c in (await env.db.comments(env.dpia)).values() if c["channel"] == "email"]
    assert "The signed agreement is attached." in comment["text"]
    assert "[Not attached: setup.exe (a program, which is never accepted)]" in comment["text"]
    assert (
        "[Not attached: invoicefdp.exe (a program, which is never accepted)]" in (comment["text"])
    )
    [attached] = comment["attachments"]
    assert "/" not in attached["name"] and "\u202e" not in attached["name"]
    assert attached["name"].endswith(".pdf") and attached["type"] == "application/pdf"

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
    assert "Soft bounce" in rows[0].reason
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
        posted = texts(await env.db.comments(env.dpia))
        assert "Genuine after all." in posted and "Spoofed." not in posted
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
        posted = texts(await inspector.comments(site.site.dpia_id))
        assert "Stored, then the power went." in posted
        assert "Claimed, then the process died." in posted
    finally:
        await inspector.close()


async def test_a_reply_merged_just_before_a_crash_is_still_told_about_once(
    sqlite_url: str,
) -> None:
    """Telling waits a second to gather replies; a stop in that second used to lose it."""
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    settings = make_settings(sqlite_url, run_worker=False)
    owner = site.site.emails["owner"]
    inspector = Inspector(sqlite_url)
    try:
        to = await reply_address(settings, site.partner_id, site.site.dpia_id)
        store = InboundStore(inspector.sessions, ReplyKeys(settings.secret_key, ["k1"], "x"))
        [row_id] = await store.store(
            transport="smtp",
            peer="127.0.0.1:1",
            envelope_from=PARTNER,
            recipients=[to],
            raw=reply(to, "Merged, then the power went."),
        )
        # As the process left it: merged (the comment is in the document), nobody told yet.
        await store.finish(
            row_id,
            "merged",
            "Posted as a comment",
            dpia_id=site.site.dpia_id,
            participant_id=site.partner_id,
            section="need",
            text="Merged, then the power went.",
        )
        async with inspector.sessions.begin() as session:
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row_id)
                .values(processed_at=datetime.now(UTC) - timedelta(minutes=1))
            )

        async def to_owner() -> list[str]:
            return [m.subject for m in await inspector.outbox() if m.recipient == owner]

        with serving(settings):
            async with asyncio.timeout(WAIT_SECONDS):
                while not await to_owner():
                    await asyncio.sleep(0.1)
        [subject] = await to_owner()
        assert "commented" in subject
        [row] = await inspector.rows()
        assert row.notified_at is not None
        with serving(settings):  # told once: a second start tells nobody again
            await asyncio.sleep(1)
        assert len(await to_owner()) == 1
    finally:
        await inspector.close()


async def test_a_reply_with_nothing_new_is_refused_as_empty_with_one_answer(env: Env) -> None:
    to = await env.address()
    body = "On Mon, 23 Nov 2026 at 10:00, OpenDPIA wrote:\n> Olive changed the aims\n"
    await deliver(env.port, reply(to, body), [to])
    [row] = await env.db.settled(1)
    assert row.outcome == "refused" and "Nothing was left" in row.reason
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
        assert "More than 2 replies in an hour" in rows[2].reason
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
            async with asyncio.timeout(WAIT_SECONDS):
                while not sink.received:
                    await asyncio.sleep(0.05)
        [answer] = sink.received
        assert answer.mail_from == "<>" and answer.rcpt_tos == [PARTNER]  # MAIL FROM:<>
        assert answer.message["Auto-Submitted"] == "auto-replied"
        assert "expired" in answer.message.get_body(("plain",)).get_content()
    finally:
        smtp.close()
        await inspector.close()


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

    async with asyncio.timeout(WAIT_SECONDS):
        while (
            told(subjects := [m.subject for m in await env.db.outbox() if m.recipient == owner]) < 5
        ):
            await asyncio.sleep(0.1)
    assert told(subjects) == 5
    assert 1 <= len(subjects) < 5, subjects  # together, not one email per reply
    async with asyncio.timeout(WAIT_SECONDS):  # and each reply is recorded as told
        while not all(row.notified_at for row in await env.db.rows()):
            await asyncio.sleep(0.05)
