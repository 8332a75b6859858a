"""Who hears about a change or a comment, in the app and by email (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.changes import ChangeEvent
from server.domain.errors import InvalidToken
from server.services import notifications
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.services.notifications import NotificationService
from server.storage.database import create_engine, migrate, writer_turn
from server.storage.models import Notification, OutboxMessage
from server.storage.updates import SqlUpdateStore

pytestmark = pytest.mark.asyncio


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    service: NotificationService
    dpias: DpiaService
    dpia_id: str
    ann: CurrentUser
    bob: CurrentUser
    ids: dict[str, int]  # email -> participant id


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    dpias = DpiaService(sessions, SqlUpdateStore(engine))
    cam = await accounts.create_organisation("CAM", "Camden")
    await accounts.create_organisation("NLFT", "The Trust")
    ann_id = await accounts.create_user("ann@camden.example", "Ann Smith", "x" * 12, "CAM")
    bob_id = await accounts.create_user("bob@nlft.example", "Bob Jones", "x" * 12, "NLFT")
    ann = CurrentUser(ann_id, "ann@camden.example", "Ann Smith", (cam,))
    bob = CurrentUser(bob_id, "bob@nlft.example", "Bob Jones", ())
    dpia_id = await dpias.create(ann, "Rough sleeping\r\nBcc: x@evil.example", cam)
    await dpias.invite(ann, dpia_id, "bob@nlft.example", "editor")
    await dpias.invite(ann, dpia_id, "jo@charity.example", "commenter", "Jo Martin")
    ids = {p.email: p.id for p in await dpias.participants(ann, dpia_id)}
    service = NotificationService(
        sessions,
        base_url="https://opendpia.example",
        mail_from="OpenDPIA <notifications@opendpia.example>",
        secret_key="k" * 40,
    )
    try:
        yield World(sessions, service, dpias, dpia_id, ann, bob, ids)
    finally:
        await engine.dispose()


def _change(world: World, actor: str, field: str = "need.aims") -> ChangeEvent:
    now = datetime.now(UTC)
    return ChangeEvent(
        world.dpia_id, actor, "browser", field, None, now, now, 12, "Fewer <b>people</b>"
    )


async def _notified(world: World) -> list[tuple[str, str]]:
    async with world.sessions() as session:
        rows = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    by_id = {v: k for k, v in world.ids.items()}
    return [(by_id[n.participant_id], n.kind) for n in rows]


async def _mail(world: World) -> list[tuple[str, bytes]]:
    async with world.sessions() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [(r.recipient, r.message) for r in rows]


async def test_a_change_reaches_every_other_participant_and_is_mailed(world: World) -> None:
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert await _notified(world) == [
        ("bob@nlft.example", "change"),
        ("jo@charity.example", "change"),
    ]
    mails = await _mail(world)
    assert [recipient for recipient, _ in mails] == ["bob@nlft.example", "jo@charity.example"]
    message = message_from_bytes(mails[0][1], policy=policy.default)
    assert (
        message["Subject"]
        == f"{world.dpia_id}: Ann Smith changed “What the project aims to achieve”"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<https://opendpia.example/unsubscribe/")
    assert message["Bcc"] is None
    text = message.get_body(("plain",)).get_content()
    assert "https://opendpia.example/dpias/" + world.dpia_id + "#need" in text
    assert "Fewer <b>people</b>" in text
    html = message.get_body(("html",)).get_content()
    assert "Fewer &lt;b&gt;people&lt;/b&gt;" in html and "<b>people</b>" not in html


async def test_an_unwatched_section_is_quiet_but_a_mention_still_reaches(world: World) -> None:
    await world.service.inbox.set_watch(world.ids["bob@nlft.example"], "need", False)
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert await _notified(world) == [("jo@charity.example", "change")]
    await world.service.record_comment(
        world.dpia_id,
        section="need",
        text="@bob@nlft.example can the trust confirm?",
        author="Jo Martin",
        actor=f"participant:{world.ids['jo@charity.example']}",
        channel="email",
    )
    assert (await _notified(world))[1:] == [
        ("ann@camden.example", "comment"),
        ("bob@nlft.example", "comment"),
    ]


async def test_one_click_unsubscribe_stops_mail_but_not_the_app(world: World) -> None:
    token = world.service.mail.unsubscribe_token(world.ids["bob@nlft.example"])
    assert await world.service.inbox.unsubscribe(token) == "Rough sleeping Bcc: x@evil.example"
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert ("bob@nlft.example", "change") in await _notified(world)
    assert [r for r, _ in await _mail(world)] == ["jo@charity.example"]
    with pytest.raises(InvalidToken):
        await world.service.inbox.unsubscribe(token[:-2] + "xx")


async def test_the_feed_shows_a_users_notifications_and_counts_unread(world: World) -> None:
    await world.service.record_changes(
        [
            _change(world, f"user:{world.ann.id}"),
            _change(world, f"user:{world.ann.id}", "risks.register"),
        ]
    )
    assert await world.service.inbox.unread(world.bob) == 2
    feed = await world.service.inbox.feed(world.bob)
    assert [(item.section, item.actor_name, item.read) for item in feed] == [
        ("risks", "Ann Smith", False),
        ("need", "Ann Smith", False),
    ]
    assert await world.service.inbox.feed(world.ann) == []  # her own changes
    await world.service.inbox.mark_all_read(world.bob)
    assert await world.service.inbox.unread(world.bob) == 0


async def test_hourly_digest_gathers_an_hour_then_sends_once(world: World) -> None:
    from datetime import timedelta

    await world.service.inbox.set_preference(world.bob, world.dpia_id, "hourly")
    for field in ("need.aims", "risks.register", "processing.nature"):
        await world.service.record_changes([_change(world, f"user:{world.ann.id}", field)])
    assert [r for r, _ in await _mail(world)] == ["jo@charity.example"] * 3  # jo: immediate
    now = datetime.now(UTC)
    assert await world.service.digests.send(now + timedelta(minutes=30)) == 0
    assert await world.service.digests.send(now + timedelta(minutes=61)) == 1
    digest = message_from_bytes((await _mail(world))[-1][1], policy=policy.default)
    assert digest["To"].addresses[0].addr_spec == "bob@nlft.example"
    assert digest["Subject"] == f"{world.dpia_id}: 3 updates this hour"
    text = digest.get_body(("plain",)).get_content()
    assert text.count("Ann Smith changed") == 3
    assert await world.service.digests.send(now + timedelta(minutes=62)) == 0  # nothing new
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert await world.service.digests.send(now + timedelta(minutes=100)) == 0  # a period since
    assert await world.service.digests.send(now + timedelta(minutes=122)) == 1


async def test_a_global_daily_choice_applies_where_a_dpia_has_none(world: World) -> None:
    from datetime import timedelta

    await world.service.inbox.set_preference(world.bob, None, "daily")
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert "bob@nlft.example" not in [r for r, _ in await _mail(world)]
    now = datetime.now(UTC)
    assert await world.service.digests.send(now + timedelta(hours=23)) == 0
    assert await world.service.digests.send(now + timedelta(hours=25)) == 1
    overall, per_dpia = await world.service.inbox.preferences(world.bob)
    assert overall.value == "daily" and per_dpia[0][2] is None
    await world.service.inbox.set_preference(world.bob, world.dpia_id, "immediate")  # DPIA wins
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert [r for r, _ in await _mail(world)].count("bob@nlft.example") == 2
    with pytest.raises(Exception, match="no email setting"):
        await world.service.inbox.set_preference(world.bob, None, "weekly")


async def test_email_only_participants_get_a_reply_address_and_a_read_link(world: World) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from server.storage.models import ReplyToken

    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    mails = {
        recipient: message_from_bytes(raw, policy=policy.default)
        for recipient, raw in await _mail(world)
    }
    assert mails["bob@nlft.example"]["Reply-To"] is None  # has an account
    jo = mails["jo@charity.example"]
    reply_to = str(jo["Reply-To"])
    assert reply_to.startswith("reply+") and reply_to.endswith("@reply.opendpia.example")
    scope = await world.service.mail.reply_scope(reply_to.upper())
    assert (scope.participant_id, scope.dpia_id, scope.section) == (
        world.ids["jo@charity.example"],
        world.dpia_id,
        "need",
    )
    text = jo.get_body(("plain",)).get_content()
    assert "Reply to this email" in text and "https://opendpia.example/r/" in text
    participant, dpia, seconds = await world.service.mail.reader(text.split("/r/")[1].split("#")[0])
    assert (participant.email, dpia.id) == ("jo@charity.example", world.dpia_id) and seconds > 0

    with pytest.raises(InvalidToken, match="expired"):
        await world.service.mail.reply_scope(reply_to, now=datetime.now(UTC) + timedelta(days=31))
    async with world.sessions.begin() as session:
        await session.execute(update(ReplyToken).values(revoked=True))
    with pytest.raises(InvalidToken, match="withdrawn"):
        await world.service.mail.reply_scope(reply_to)
    never_stored = world.service.mail.reply_keys.new().address
    with pytest.raises(InvalidToken, match="unknown"):
        await world.service.mail.reply_scope(never_stored)
    with pytest.raises(InvalidToken):
        await world.service.mail.reader("not-a-link")


async def test_an_invitation_is_mailed_with_a_read_only_link(world: World) -> None:
    participant_id = await world.dpias.invite(
        world.ann, world.dpia_id, "sam@charity.example", "viewer"
    )
    await world.service.record_invitation(world.dpia_id, participant_id, "Ann Smith")
    (recipient, raw) = (await _mail(world))[-1]
    message = message_from_bytes(raw, policy=policy.default)
    assert recipient == "sam@charity.example"
    assert message["Subject"] == f"{world.dpia_id}: Ann Smith invited you to take part as a viewer"
    assert "https://opendpia.example/r/" in message.get_body(("plain",)).get_content()


async def test_a_reviewer_hears_about_their_section_even_when_unwatched(world: World) -> None:
    bob = world.ids["bob@nlft.example"]
    await world.service.inbox.set_watch(bob, "need", False)
    await world.dpias.set_reviewer(world.ann, world.dpia_id, "need", bob, True)
    assert await world.dpias.reviewers(world.bob, world.dpia_id) == {"need": [bob]}
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert ("bob@nlft.example", "change") in await _notified(world)
    with pytest.raises(Exception, match="owners"):
        await world.dpias.set_reviewer(world.bob, world.dpia_id, "need", bob, False)
    await world.dpias.set_reviewer(world.ann, world.dpia_id, "need", bob, False)
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    assert [n for n in await _notified(world) if n[0] == "bob@nlft.example"] == [
        ("bob@nlft.example", "change")
    ]


async def test_signers_hear_when_what_they_signed_changes(world: World) -> None:
    jo = world.ids["jo@charity.example"]
    await world.service.inbox.set_watch(jo, "risks", False)
    await world.service.record_stale_signoff(
        world.dpia_id, section="risks", signers=[jo], actor=f"user:{world.ann.id}", excerpt="R1"
    )
    assert await _notified(world) == [("jo@charity.example", "stale")]
    (recipient, raw) = (await _mail(world))[-1]
    message = message_from_bytes(raw, policy=policy.default)
    assert recipient == "jo@charity.example" and "which you signed off" in message["Subject"]


async def test_a_status_change_reaches_every_other_participant(world: World) -> None:
    await world.service.record_status_change(
        world.dpia_id, old="draft", new="in_review", actor=f"user:{world.ann.id}", reason="Ready"
    )
    assert await _notified(world) == [
        ("bob@nlft.example", "status"),
        ("jo@charity.example", "status"),
    ]
    (_, raw) = (await _mail(world))[-1]
    subject = message_from_bytes(raw, policy=policy.default)["Subject"]
    assert subject == f"{world.dpia_id}: Ann Smith moved the DPIA from draft to in review"


async def test_recording_changes_reads_and_composes_before_taking_the_write_turn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_turn = False

    @contextlib.asynccontextmanager
    async def marked_turn(bind: Any) -> AsyncIterator[None]:
        nonlocal in_turn
        async with writer_turn(bind):
            in_turn = True
            try:
                yield
            finally:
                in_turn = False

    statements: list[tuple[bool, str]] = []
    engine = world.sessions.kw["bind"]
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_: statements.append((in_turn, statement.split()[0])),
    )
    monkeypatch.setattr(notifications, "writer_turn", marked_turn)
    await world.service.record_changes([_change(world, f"user:{world.ann.id}")])
    # The people to tell are read outside the turn; inside it, only the rows are written.
    assert {verb for held, verb in statements if not held} == {"SELECT"}
    assert {verb for held, verb in statements if held} == {"INSERT"}
    assert len(await _notified(world)) == 2
