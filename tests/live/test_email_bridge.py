"""The email bridge over real SMTP and LMTP: the door (RCPT, DATA, sizes, storage failures,
TLS aside), routing, sender authentication and authorisation, against the running app."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.support.bridge import (
    PARTNER,
    PARTNER_NAME,
    TRUSTED,
    Env,
    Inspector,
    bridge_env,
    bridge_process,
    deliver,
    reply,
    reply_address,
    seed_bridge_site,
    texts,
)
from tests.support.live import WAIT_SECONDS, make_settings, reserved_port, serving
from tests.support.site import prepare

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def env(sqlite_url: str) -> AsyncIterator[Env]:
    async with bridge_env(sqlite_url) as running:
        yield running


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
    assert texts(await env.db.comments(env.dpia)).count("Only once, please.") == 1


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
    assert row.outcome == "dropped" and "our own" in row.reason.lower()


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
    assert "For the first DPIA." in texts(await env.db.comments(env.dpia))
    assert "For the first DPIA." not in texts(await env.db.comments(env.site.other_dpia))


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
    assert "Held words." not in texts(await env.db.comments(env.dpia))
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
    settings = make_settings(sqlite_url, bridge_lmtp_port=reserved_port(), run_worker=False)
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


async def test_a_taken_bridge_port_does_not_stop_the_embedded_web_app(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(sqlite_url, bridge_port=port, run_worker=False)
        with caplog.at_level(logging.ERROR, logger="opendpia.bridge"), serving(settings) as live:
            async with httpx.AsyncClient(timeout=WAIT_SECONDS) as client:
                answer = await client.get(f"http://127.0.0.1:{live.port}/healthz")
            assert answer.status_code == 200
        assert any("cannot listen for SMTP" in r.getMessage() for r in caplog.records)


async def test_opendpia_bridge_runs_on_its_own(sqlite_url: str, tmp_path: Path) -> None:
    """The production shape: ``opendpia bridge`` as its own process, next to the database."""
    await asyncio.to_thread(prepare, sqlite_url)
    site = await seed_bridge_site(sqlite_url)
    port = reserved_port()
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
    try:
        async with bridge_process(env, port, tmp_path / "bridge.log") as process:
            assert (await deliver(port, reply(to, "Via the bridge process."), [to])).data == 250
            [row] = await inspector.settled(1)
            assert row.outcome == "merged"
            assert "Via the bridge process." in texts(await inspector.comments(site.site.dpia_id))
        assert process.returncode == 0, (tmp_path / "bridge.log").read_text()
    finally:
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
