"""Ranking reads a bounded window of matches (issue 17's 50 ms target): the newest matches the
person may see, the access check applied before the window, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from server.domain.search import parse_query
from server.services.accounts import AccountService, CurrentUser, password_hasher
from server.services.dpias import DpiaService
from server.services.search import SearchIndex, SearchService
from server.storage.database import create_engine, migrate
from server.storage.updates import SqlUpdateStore
from tests.support.search import content

pytestmark = pytest.mark.asyncio


@dataclass
class Shelf:
    engine: AsyncEngine
    ann: CurrentUser
    ann_documents: list[str]  # oldest first; the first two match "quokka" best by far
    oscar_documents: list[str]  # made between Ann's, all matching too


@pytest_asyncio.fixture
async def shelf(database_url: str) -> AsyncIterator[Shelf]:
    import asyncio

    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    store = SqlUpdateStore(engine)
    accounts = AccountService(sessions, password_hasher("fast-for-tests"))
    dpias = DpiaService(sessions, store)
    index = SearchIndex(sessions, store)
    cam = await accounts.create_organisation("CAM", "London Borough of Camden")
    nlft = await accounts.create_organisation("NLFT", "North London NHS Foundation Trust")
    ann_id = await accounts.create_user("ann@camden.example", "Ann Smith", "pw-123456789", "CAM")
    oscar_id = await accounts.create_user("os@nlft.example", "Oscar Other", "pw-123456789", "NLFT")
    ann = CurrentUser(ann_id, "ann@camden.example", "Ann Smith", (cam,))
    oscar = CurrentUser(oscar_id, "os@nlft.example", "Oscar Other", (nlft,))
    mine: list[str] = []
    theirs: list[str] = []
    for number in range(8):
        best = number < 2
        line = "Quokka quokka quokka quokka sightings." if best else "One quokka, among otters."
        mine.append(
            await dpias.create(
                ann,
                ("Quokka register" if best else f"Otter survey {number}"),
                cam,
                initial_state=content("uk-dpia", {"need.aims": [line]}),
            )
        )
        await index.index([mine[-1]])  # indexed in the order made, as the server does
        theirs.append(
            await dpias.create(
                oscar,
                "Quokka quokka everywhere",
                nlft,
                initial_state=content("uk-dpia", {"need.aims": ["Quokka quokka quokka."]}),
            )
        )
        await index.index([theirs[-1]])
    try:
        yield Shelf(engine, ann, mine, theirs)
    finally:
        await engine.dispose()


async def test_only_the_newest_matches_one_may_see_are_ranked(shelf: Shelf) -> None:
    sessions = async_sessionmaker(shelf.engine, expire_on_commit=False)
    everything = await SearchService(sessions).search(shelf.ann, parse_query("quokka"))
    found = [result.document_id for result in everything.results]
    assert found[:2] == shelf.ann_documents[:2] or found[:2] == shelf.ann_documents[1::-1]
    assert sorted(found) == sorted(shelf.ann_documents)

    windowed = await SearchService(sessions, candidates=4).search(shelf.ann, parse_query("quokka"))
    found = [result.document_id for result in windowed.results]
    # Oscar's documents, newer than most of Ann's and better matches, take no place in it.
    assert sorted(found) == sorted(shelf.ann_documents[-4:])
    assert not windowed.more
    # Narrower words reach the older documents again.
    narrowed = await SearchService(sessions, candidates=4).search(
        shelf.ann, parse_query("quokka register")
    )
    assert sorted(r.document_id for r in narrowed.results) == sorted(shelf.ann_documents[:2])


async def test_a_window_with_nothing_one_may_see_finds_nothing(shelf: Shelf) -> None:
    sessions = async_sessionmaker(shelf.engine, expire_on_commit=False)
    found = await SearchService(sessions, candidates=4).search(shelf.ann, parse_query("everywhere"))
    assert found.results == [] and not found.more


async def test_the_passage_marks_a_match_far_into_the_answers(shelf: Shelf) -> None:
    """PostgreSQL builds the passage from the part of the answers around the first place the
    query's stem appears; when that place is inside another word ("shareholders" for
    "share"), the whole answer is used and the real match is still marked."""
    sessions = async_sessionmaker(shelf.engine, expire_on_commit=False)
    filler = " ".join(f"otter{n}" for n in range(600))
    dpias = DpiaService(sessions, SqlUpdateStore(shelf.engine))
    document = await dpias.create(
        shelf.ann,
        "Letters",
        shelf.ann.organisation_ids[0],
        initial_state=content(
            "uk-dpia",
            {"need.aims": [f"Shareholders write. {filler}", "We are sharing discharge summaries."]},
        ),
    )
    await SearchIndex(sessions, SqlUpdateStore(shelf.engine)).index([document])
    found = await SearchService(sessions).search(shelf.ann, parse_query("share"))
    result = next(r for r in found.results if r.document_id == document)
    marked = [text.lower() for text, hit in result.passage if hit]
    assert "sharing" in marked, result.passage
