"""A whole review cycle over the real server (docs/reviews.md), on SQLite and PostgreSQL: a
DPIA approved and put in force, a review started, the old version still the one in force
while the new one is edited, the new version approved, and then the new one in force and
the old one superseded, saying so on its pages and in its history, with the review
schedule started again from the new approval (time moved by an injected clock)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pycrdt import Map, XmlFragment
from sqlalchemy import select

from server.domain.reviews import add_months
from server.domain.templates import append_paragraphs
from server.storage.models import AuditEvent, Dpia, Notification
from tests.support.approval import approve, fill, post
from tests.support.live import LiveServer, until
from tests.support.review import MovedClock as Clock
from tests.support.site import Site, csrf_field, seeded_server, session_socket

pytestmark = pytest.mark.asyncio


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(database_url: str, clock: Clock) -> Iterator[tuple[LiveServer, Site]]:
    with seeded_server(database_url, clock=clock, review_check_seconds=0.2) as served:
        yield served


def _query(live: LiveServer, statement: Any) -> list[Any]:
    async def run() -> list[Any]:
        async with live.runtime.sessions() as session:
            return list((await session.execute(statement)).all())

    return live.call(run())


def _statuses(live: LiveServer) -> dict[str, str]:
    return dict(_query(live, select(Dpia.id, Dpia.status)))


def _approved_on(live: LiveServer, dpia_id: str) -> date:
    """The day the status change to "approved" was chained."""
    for at, data in _query(
        live,
        select(AuditEvent.at, AuditEvent.data).where(
            AuditEvent.dpia_id == dpia_id, AuditEvent.kind == "status"
        ),
    ):
        if json.loads(data).get("to") == "approved":
            moment: datetime = at
            return moment.date()
    raise AssertionError(f"{dpia_id} was never approved")


def _next_review(page: httpx.Response) -> str:
    found = re.search(r"Next review:\s*<strong>([^<]+)</strong>", page.text)
    assert found, "no next review date on the page"
    return found.group(1)


def _reminded(live: LiveServer, dpia_id: str) -> int:
    return len(
        _query(
            live,
            select(Notification.id).where(
                Notification.dpia_id == dpia_id, Notification.kind == "review"
            ),
        )
    )


async def test_an_approved_review_supersedes_the_version_in_force_and_restarts_the_schedule(
    server: tuple[LiveServer, Site], clients: dict[str, httpx.AsyncClient], clock: Clock
) -> None:
    live, site = server
    old = site.dpia_id
    owner = clients["owner"]
    due = (clock.now + timedelta(days=60)).date()
    due_text = due.strftime("%d %B %Y")

    # Approved and put in force, reviewed yearly, next review in 60 days.
    editor = await session_socket(live.port, old, owner)
    try:
        fill(editor.doc)
        values = editor.doc.get("values", type=Map)
        values["review.frequency"] = "12-months"
        values["review.next_review"] = due.isoformat()
        await editor.wait_saved()
    finally:
        await editor.close()
    await approve(clients, old)
    in_force = await post(owner, f"/api/dpias/{old}/status", {"status": "in_force"})
    assert in_force.status_code == 200, in_force.text
    assert _next_review(await owner.get(f"/dpias/{old}/review")) == due_text

    # A review starts: a new version opens, the approved one stays the one in force.
    page = await owner.get(f"/dpias/{old}/review")
    started = await owner.post(
        f"/dpias/{old}/review",
        data={"csrftoken": csrf_field(page.text), "action": "start", "reason": "date"},
    )
    assert started.status_code == 303, started.text
    new = started.headers["location"].split("/")[2]
    assert _statuses(live)[old] == "under_review" and _statuses(live)[new] == "draft"

    writer = await session_socket(live.port, new, owner)
    try:
        append_paragraphs(writer.doc.get("field:need.aims", type=XmlFragment), ["Reviewed."])
        await writer.wait_saved()
        assert not writer.denied
        # The new version's review date starts empty: its schedule starts at its approval.
        assert "review.next_review" not in writer.doc.get("values", type=Map)
        assert writer.doc.get("values", type=Map)["review.frequency"] == "12-months"
    finally:
        await writer.close()
    old_page = (await owner.get(f"/dpias/{old}/workflow")).text
    assert f"the changes are made in {new}" in old_page and "stays in force" in old_page
    new_page = (await owner.get(f"/dpias/{new}/workflow")).text
    assert f"The approved version in force is {old}" in new_page
    assert "Its next review date starts empty" in new_page
    assert (await owner.get(f"/dpias/{old}/export.json")).status_code == 200

    # The new version is approved: it supersedes the old one.
    await approve(clients, new)
    assert _statuses(live)[old] == "superseded" and _statuses(live)[new] == "approved"
    new_page = (await owner.get(f"/dpias/{new}/workflow")).text
    assert "The approved version in force is" not in new_page
    old_page = (await owner.get(f"/dpias/{old}/workflow")).text
    assert "stays in force" not in old_page and "Start review" not in old_page
    assert f"Superseded by {new}, approved on " in old_page
    assert f"{new} is the version in force now" in old_page
    old_review = (await owner.get(f"/dpias/{old}/review")).text
    assert "stays in force" not in old_review and "Next review:" not in old_review
    history = (await owner.get(f"/dpias/{old}/history")).text
    assert f"Under review → Superseded by {new}" in history
    # Its participants are told that the version under review was superseded.
    told = _query(
        live,
        select(Notification.excerpt).where(
            Notification.dpia_id == old, Notification.kind == "status"
        ),
    )
    assert (f"Under review → Superseded. replaced by {new}",) in told
    assert not any(excerpt.startswith("In force → Superseded") for (excerpt,) in told)

    # The schedule starts again from the new approval: a year on, reminded only then.
    renewed = add_months(_approved_on(live, new), 12)
    review = await owner.get(f"/dpias/{new}/review")
    assert _next_review(review) == renewed.strftime("%d %B %Y")
    clock.set(due + timedelta(days=1))  # the old date has passed: nothing is overdue
    assert "Review was due" not in (await owner.get("/projects")).text
    assert live.call(live.runtime.reviews.send_due()) == 0
    assert _reminded(live, old) == 0 and _reminded(live, new) == 0
    clock.set(renewed - timedelta(days=30))
    await until(lambda: _reminded(live, new) > 0, "the new version's first reminder")
    assert _reminded(live, old) == 0
