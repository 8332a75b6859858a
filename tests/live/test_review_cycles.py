"""Review cycles over the real server (issue 17): reminders at each offset once and only
once (time moved by an injected clock, across a restart), an overdue review on the
dashboard and in the DPO's daily list, a trigger raised by an email reply through real
SMTP into the bridge and by the web form, and a review that opens a new version while the
approved one stays in force."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.storage.database import create_engine
from server.storage.models import (
    AuditEvent,
    Dpia,
    InboundMessage,
    Notification,
    OutboxMessage,
    Participant,
    ReviewReminder,
    User,
    UserMailPreference,
)
from server.storage.updates import SqlUpdateStore
from tests.support.bridge import (
    TRUSTED,
    BridgeSite,
    deliver,
    reply,
    reply_address,
    seed_bridge_site,
)
from tests.support.live import LiveServer, make_settings, serving, until
from tests.support.review import MovedClock as Clock
from tests.support.review import append_change, value
from tests.support.site import csrf_field, prepare, signed_in

pytestmark = pytest.mark.asyncio

DUE = "2027-03-01"


@dataclass
class World:
    live: LiveServer
    site: BridgeSite
    clock: Clock
    database_url: str

    @property
    def dpia(self) -> str:
        return self.site.site.dpia_id

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.live.port}"

    def query(self, statement: Any) -> Any:
        async def run() -> Any:
            async with self.live.runtime.sessions() as session:
                return (await session.execute(statement)).all()

        return self.live.call(run())


async def _seed(database_url: str) -> BridgeSite:
    site = await seed_bridge_site(database_url)
    engine = create_engine(database_url)
    try:
        store = SqlUpdateStore(engine)
        # The DPIA is approved and in force, with its next review date; the other DPIA is a
        # draft whose date passed long ago (a draft is not due for review).
        await append_change(store, site.site.dpia_id, value("review.next_review", DUE), "user:1")
        await append_change(
            store, site.other_dpia, value("review.next_review", "2020-01-01"), "user:1"
        )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions.begin() as session:
            await session.execute(
                update(Dpia).where(Dpia.id == site.site.dpia_id).values(status="in_force")
            )
            # The DPO takes a daily digest: their reminders wait for it, as any notice does.
            dpo = await session.scalar(select(User.id).where(User.email == site.site.emails["dpo"]))
            session.add(UserMailPreference(user_id=dpo, mode="daily"))
    finally:
        await engine.dispose()
    return site


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    prepare(database_url)
    site = asyncio.run(_seed(database_url))
    clock = Clock(datetime(2027, 1, 1, 9, tzinfo=UTC))
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
        yield World(live, site, clock, database_url)


def _reminders(world: World) -> dict[str, int]:
    """Review reminders notified, by participant email."""
    rows = world.query(
        select(Participant.email, func.count())
        .join(Notification, Notification.participant_id == Participant.id)
        .where(Notification.kind == "review", Notification.dpia_id == world.dpia)
        .group_by(Participant.email)
    )
    return dict(rows)


def _send_now(world: World) -> int:
    """One pass of the reminder job now (besides the server's own), as a second process would."""
    sent: int = world.live.call(world.live.runtime.reviews.send_due())
    return sent


async def test_reminders_go_at_each_offset_once_and_only_once_across_a_restart(
    world: World,
) -> None:
    owner, dpo = world.site.site.emails["owner"], world.site.site.emails["dpo"]
    assert _send_now(world) == 0 and _reminders(world) == {}  # 59 days before: nothing
    for day, expected in (("2027-01-30", 1), ("2027-02-22", 2), ("2027-02-28", 3)):
        world.clock.set(day)
        await until(
            lambda n=expected: _reminders(world) == {owner: n, dpo: n},  # type: ignore[misc]
            f"reminder {expected} to the owner and the DPO",
        )
        assert _send_now(world) == 0  # already sent: not again
        world.live.restart()  # the record survives a restart: still once
        assert _send_now(world) == 0
        assert _reminders(world) == {owner: expected, dpo: expected}
    offsets = world.query(
        select(ReviewReminder.days_before, ReviewReminder.emailed).where(
            ReviewReminder.dpia_id == world.dpia
        )
    )
    assert sorted(offsets) == [(1, True), (7, True), (30, True)]
    # Each went as an email (they take mail immediately), naming the date and the days left.
    subjects = world.query(
        select(OutboxMessage.subject).where(
            OutboxMessage.recipient == owner, OutboxMessage.subject.contains("review is due")
        )
    )
    assert len(subjects) == 3
    assert any("1 March 2027 (in 30 days)" in s for (s,) in subjects)
    assert any("(tomorrow)" in s for (s,) in subjects)
    # The DPO chose a daily digest: no email of its own, three notices for the digest.
    to_dpo = world.query(
        select(OutboxMessage.id).where(
            OutboxMessage.recipient == dpo, OutboxMessage.subject.contains("review is due")
        )
    )
    assert to_dpo == []
    states = world.query(
        select(Notification.email)
        .join(Participant, Participant.id == Notification.participant_id)
        .where(Notification.kind == "review", Participant.email == dpo)
    )
    assert [e for (e,) in states] == ["digest"] * 3
    # Editors are not reminded: reviews are the owners' and the DPO's.
    assert world.site.site.emails["editor"] not in _reminders(world)


async def test_an_overdue_review_is_on_the_dashboard_and_in_the_dpos_daily_list(
    world: World,
) -> None:
    dpo = world.site.site.emails["dpo"]
    client = await signed_in(world.base, world.site.site.emails["owner"])
    try:
        page = (await client.get("/projects")).text
        assert "Review was due" not in page  # not yet
        world.clock.set("2027-03-02")
        page = (await client.get("/projects")).text
        assert f"{world.dpia}: Shared DPIA</a>: Review was due on 01 March 2027" in page
        # The draft's old date is not a review due: it is not approved yet.
        assert f"{world.site.other_dpia}: Another DPIA</a>: Review was due" not in page

        def lists() -> list[Any]:
            return list(
                world.query(
                    select(OutboxMessage.subject).where(
                        OutboxMessage.recipient == dpo,
                        OutboxMessage.subject.startswith("Overdue reviews"),
                    )
                )
            )

        await until(lists, "the DPO's list of overdue reviews")
        assert lists() == [("Overdue reviews: 1 document",)]
        assert _send_now(world) == 0 and len(lists()) == 1  # once a day
        world.clock.set("2027-03-03")
        await until(lambda: len(lists()) == 2, "the next day's list")
        # The review page says it too.
        review = (await client.get(f"/dpias/{world.dpia}/review")).text
        assert "Review was due on 01 March 2027" in review
    finally:
        await client.aclose()


async def test_a_trigger_raised_by_email_reply_is_in_the_history_and_told(world: World) -> None:
    settings = world.live.settings
    address = await reply_address(settings, world.site.partner_id, world.dpia, "outcome")
    message = reply(
        address, "This has changed: we now share the list with a new partner, the police."
    )
    delivery = await deliver(settings.bridge_port, message, [address])
    assert delivery.data == 250, delivery.data_message

    def outcome() -> Any:
        rows = world.query(select(InboundMessage.outcome, InboundMessage.reason))
        return rows if rows and rows[0][0] is not None else None

    rows = await until(outcome, "the reply processed")
    assert rows[0][0] == "trigger" and "A new partner" in rows[0][1]
    events = world.query(
        select(AuditEvent.channel, AuditEvent.actor, AuditEvent.data).where(
            AuditEvent.dpia_id == world.dpia, AuditEvent.kind == "review_trigger"
        )
    )
    assert len(events) == 1
    channel, actor, data = events[0]
    assert channel == "email" and actor == f"participant:{world.site.partner_id}"
    assert json.loads(data)["trigger"] == "new-partner"
    told = world.query(
        select(Participant.role)
        .join(Notification, Notification.participant_id == Participant.id)
        .where(Notification.kind == "trigger")
    )
    assert sorted(r for (r,) in told) == ["dpo", "owner"]
    # The same message delivered again is a duplicate, not a second trigger.
    await deliver(settings.bridge_port, message, [address])
    await until(lambda: len(world.query(select(InboundMessage.id))) == 2, "the copy stored")
    await until(
        lambda: world.query(select(InboundMessage.outcome).where(InboundMessage.id == 2))[0][0],
        "the copy processed",
    )
    assert world.query(select(InboundMessage.outcome).where(InboundMessage.id == 2)) == [
        ("duplicate",)
    ]
    # Any participant raises one from the page too; the page lists both, with their channel.
    viewer = await signed_in(world.base, world.site.site.emails["viewer"])
    try:
        path = f"/dpias/{world.dpia}/review"
        page = await viewer.get(path)
        assert "Start review" not in page.text  # a viewer may not start one
        posted = await viewer.post(
            path,
            data={
                "csrftoken": csrf_field(page.text),
                "action": "trigger",
                "trigger": "complaint",
                "what": "A resident complained about the letters",
            },
        )
        assert posted.status_code == 303, posted.text
        listed = (await viewer.get(path)).text
        assert "A resident complained about the letters" in listed and "Browser" in listed
        assert "we now share the list with a new partner" in listed and "Email" in listed
        history = (await viewer.get(f"/dpias/{world.dpia}/history")).text
        assert "Review trigger raised: A complaint" in history
        unknown = await viewer.post(
            path,
            data={"csrftoken": csrf_field(listed), "action": "trigger", "trigger": "meteor"},
        )
        assert unknown.status_code == 400 and "Choose one of the review triggers" in unknown.text
    finally:
        await viewer.aclose()


async def test_starting_a_review_opens_a_new_version_while_the_approved_one_stays_in_force(
    world: World,
) -> None:
    owner = await signed_in(world.base, world.site.site.emails["owner"])
    editor = await signed_in(world.base, world.site.site.emails["editor"])
    try:
        workflow = (await owner.get(f"/dpias/{world.dpia}/workflow")).text
        assert "Start review" in workflow and "Next review:" in workflow
        # An editor may not; a bare status change to "under review" is refused too.
        page = await editor.get(f"/dpias/{world.dpia}/review")
        refused = await editor.post(
            f"/dpias/{world.dpia}/review",
            data={"csrftoken": csrf_field(page.text), "action": "start", "reason": "date"},
        )
        assert refused.status_code == 403
        bare = await owner.post(
            f"/api/dpias/{world.dpia}/status",
            json={"status": "under_review"},
            headers={"x-csrftoken": owner.cookies.get("csrftoken", "")},
        )
        assert bare.status_code in (400, 403) and "Start review" in bare.text
        started = await owner.post(
            f"/dpias/{world.dpia}/review",
            data={"csrftoken": csrf_field(workflow), "action": "start", "reason": "breach"},
        )
        assert started.status_code == 303, started.text
        new_id = started.headers["location"].split("/")[2]
        assert new_id != world.dpia
        statuses = dict(world.query(select(Dpia.id, Dpia.status)))
        assert statuses[world.dpia] == "under_review" and statuses[new_id] == "draft"
        origin = world.query(select(Dpia.origin_id).where(Dpia.id == new_id))
        assert origin == [(world.dpia,)]
        # The content came over but for the review date (the new version's schedule starts
        # at its own approval); the approved version keeps its date and its export and says
        # where the review happens; the new version says which version is in force.
        exported = (await owner.get(f"/dpias/{new_id}/export.json")).json()
        assert not exported["content"]["review"].get("next_review")
        kept = (await owner.get(f"/dpias/{world.dpia}/export.json")).json()
        assert kept["content"]["review"]["next_review"] == DUE
        old_export = await owner.get(f"/dpias/{world.dpia}/export.json")
        assert old_export.status_code == 200
        old_page = (await owner.get(f"/dpias/{world.dpia}/workflow")).text
        assert f"the changes are made in {new_id}" in old_page
        new_page = (await owner.get(f"/dpias/{new_id}/workflow")).text
        assert f"The approved version in force is {world.dpia}" in new_page
        history = (await owner.get(f"/dpias/{world.dpia}/history")).text
        assert f"Review started (A data breach); the new version is {new_id}" in history
        # Still the record: a second review is refused, and it is no longer "overdue".
        again = await owner.post(
            f"/dpias/{world.dpia}/review",
            data={"csrftoken": csrf_field(old_page), "action": "start", "reason": "date"},
        )
        assert again.status_code == 400 and "under way already" in again.text
        world.clock.set("2027-03-05")
        assert "Review was due" not in (await owner.get("/projects")).text
    finally:
        await owner.aclose()
        await editor.aclose()
