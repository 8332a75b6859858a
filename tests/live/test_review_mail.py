"""The emails about an approved document say how to raise a review trigger, and the way
they say works (docs/reviews.md), on the real server with its email bridge: a partner
without an account, told by email that the DPIA was approved, reads that a reply starting
"This has changed:" asks for a review; replying so to that very email raises the trigger.
The owner's "review is due" email links the review page where a trigger is raised."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from pycrdt import Map
from sqlalchemy import select

from server.domain import wording
from server.storage.models import AuditEvent, InboundMessage, OutboxMessage
from tests.support.approval import approve, fill
from tests.support.bridge import PARTNER, TRUSTED, BridgeSite, deliver, reply, seed_bridge_site
from tests.support.live import LiveServer, make_settings, serving, until
from tests.support.review import MovedClock as Clock
from tests.support.site import prepare, session_socket, signed_in

pytestmark = pytest.mark.asyncio


@dataclass
class World:
    live: LiveServer
    site: BridgeSite
    clock: Clock

    def query(self, statement: Any) -> list[Any]:
        async def run() -> list[Any]:
            async with self.live.runtime.sessions() as session:
                return list((await session.execute(statement)).all())

        return self.live.call(run())


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    prepare(database_url)
    site = asyncio.run(seed_bridge_site(database_url))
    clock = Clock()
    settings = make_settings(
        database_url,
        clock=clock,
        review_check_seconds=0.2,
        run_bridge=True,
        run_worker=False,  # mail stays in the outbox, where the test reads it
        bridge_trusted_authserv_ids=TRUSTED,
        base_url="https://opendpia.test",
    )
    with serving(settings) as live:
        yield World(live, site, clock)


def _mail_to(world: World, address: str, subject_has: str) -> list[EmailMessage]:
    rows = world.query(
        select(OutboxMessage.message)
        .where(OutboxMessage.recipient == address, OutboxMessage.subject.contains(subject_has))
        .order_by(OutboxMessage.id)
    )
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(raw) for (raw,) in rows]  # type: ignore[misc]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())  # type: ignore[attr-defined]


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


async def test_the_approval_email_says_how_to_raise_a_trigger_and_replying_so_raises_it(
    world: World,
) -> None:
    live, site = world.live, world.site.site
    dpia = site.dpia_id
    base = f"http://127.0.0.1:{live.port}"
    clients = {role: await signed_in(base, email) for role, email in site.emails.items()}
    due = (world.clock.now + timedelta(days=60)).date()
    try:
        editor = await session_socket(live.port, dpia, clients["owner"])
        try:
            fill(editor.doc)
            editor.doc.get("values", type=Map)["review.next_review"] = due.isoformat()
            await editor.wait_saved()
        finally:
            await editor.close()
        await approve(clients, dpia)
    finally:
        for client in clients.values():
            await client.aclose()

    [approved] = await until(
        lambda: _mail_to(world, PARTNER, "to approved"), "the partner's approval email"
    )
    text = _text(approved)
    assert "This document is approved, so a reply is no longer added to its discussion" in text
    assert f"reply with a first line starting “{wording.TRIGGER_REPLY_START}”" in text
    assert "(new data, a new partner, new technology" in text
    assert "to comment on this section" not in text
    assert wording.TRIGGER_REPLY_START in _html(approved)
    reply_to = approved["Reply-To"]
    assert reply_to

    # Replying to that email as it says raises a review trigger.
    answer = reply(
        str(reply_to),
        f"{wording.TRIGGER_REPLY_START} the list now also goes to a new partner, the police.",
        subject=f"Re: {approved['Subject']}",
    )
    delivery = await deliver(live.settings.bridge_port, answer, [str(reply_to)])
    assert delivery.data == 250, delivery.data_message
    [(outcome, reason)] = await until(
        lambda: world.query(
            select(InboundMessage.outcome, InboundMessage.reason).where(
                InboundMessage.outcome.is_not(None)
            )
        ),
        "the reply processed",
    )
    assert outcome == "trigger" and "A new partner" in reason
    [(channel, data)] = world.query(
        select(AuditEvent.channel, AuditEvent.data).where(
            AuditEvent.dpia_id == dpia, AuditEvent.kind == "review_trigger"
        )
    )
    assert channel == "email" and json.loads(data)["trigger"] == "new-partner"
    assert "the police" in json.loads(data)["what"]

    # The owner's "review is due" email links the page where a trigger is raised.
    world.clock.now = datetime(due.year, due.month, due.day, 9, tzinfo=UTC) - timedelta(days=7)
    [due_mail] = await until(
        lambda: _mail_to(world, site.emails["owner"], "review is due"), "the owner's reminder"
    )
    assert f"{wording.REVIEW_TRIGGER_LINK} https://opendpia.test/dpias/{dpia}/review" in _text(
        due_mail
    )


async def test_a_partner_s_email_about_a_draft_still_asks_for_comments(world: World) -> None:
    """The hint is for approved documents only: a draft's emails invite comments."""
    live, site = world.live, world.site.site
    owner = await signed_in(f"http://127.0.0.1:{live.port}", site.emails["owner"])
    try:
        editor = await session_socket(live.port, site.dpia_id, owner)
        try:
            fill(editor.doc)
            await editor.wait_saved()
        finally:
            await editor.close()
        moved = await owner.post(
            f"/api/dpias/{site.dpia_id}/status",
            json={"status": "in_review"},
            headers={"x-csrftoken": owner.cookies["csrftoken"]},
        )
        assert moved.status_code == 200, moved.text
    finally:
        await owner.aclose()
    [mail] = await until(lambda: _mail_to(world, PARTNER, "to in review"), "the partner's email")
    assert "to comment on this section" in _text(mail)
    assert wording.TRIGGER_REPLY_START not in _text(mail)
