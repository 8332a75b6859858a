"""The reminder pass over approved documents (issue 17) reads a document's review answers
again only when its log has moved: a pass over thousands of approved documents must not
read each of them whole every few minutes, and a changed date must still be seen at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
import pytest_asyncio
from sqlalchemy import update

from server.domain.dpias import DpiaStatus
from server.services.history import HistoryService, Version
from server.services.notifications import NotificationService
from server.services.reviews import ReviewService
from server.storage.models import Dpia
from tests.support.review import World, edit, review_world, value

pytestmark = pytest.mark.asyncio


class CountingHistory(HistoryService):
    """The real history, counting whole-document reads."""

    reads = 0

    async def current(self, dpia_id: str) -> Version:
        CountingHistory.reads += 1
        return await super().current(dpia_id)


@pytest_asyncio.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with review_world(database_url) as built:
        yield built


def _reviews(w: World) -> tuple[ReviewService, type[CountingHistory]]:
    history = CountingHistory(w.sessions, w.store, w.audit)
    CountingHistory.reads = 0
    reviews = ReviewService(
        w.sessions,
        w.dpias,
        history,
        w.audit,
        NotificationService(
            w.sessions,
            base_url="http://127.0.0.1",
            mail_from="OpenDPIA <opendpia@localhost>",
            secret_key="x" * 40,
        ),
        offsets=(30, 7, 1),
        clock=lambda: datetime(2026, 12, 3, tzinfo=UTC),
        base_url="http://127.0.0.1",
        mail_from="OpenDPIA <opendpia@localhost>",
    )
    return reviews, CountingHistory


async def _due(reviews: ReviewService, dpia_id: str) -> date | None:
    return {s.dpia_id: s.due for s in await reviews.scheduled()}[dpia_id]


async def test_a_pass_reads_a_document_again_only_when_its_log_moved(world: World) -> None:
    await edit(world, value("review.next_review", "2027-03-01"))
    async with world.sessions.begin() as session:
        await session.execute(
            update(Dpia).where(Dpia.id == world.dpia_id).values(status=DpiaStatus.IN_FORCE.value)
        )
    reviews, history = _reviews(world)

    assert await _due(reviews, world.dpia_id) == date(2027, 3, 1)
    assert history.reads == 1
    assert await _due(reviews, world.dpia_id) == date(2027, 3, 1)
    assert history.reads == 1  # nothing moved: nothing read

    await edit(world, value("review.next_review", "2027-01-15"))
    assert await _due(reviews, world.dpia_id) == date(2027, 1, 15)
    assert history.reads == 2

    # A process starting afresh finds the answers kept by the last pass: it reads nothing.
    restarted, history = _reviews(world)
    assert await _due(restarted, world.dpia_id) == date(2027, 1, 15)
    assert history.reads == 0

    # Compaction moves no answer and needs no read either way; the date stays right.
    await world.store.compact(world.dpia_id)
    assert await _due(reviews, world.dpia_id) == date(2027, 1, 15)
