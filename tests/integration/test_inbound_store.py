"""Inbound mail stored before 250: concurrent messages share a commit, each gets its rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.replies import ReplyKeys
from server.services.inbound import InboundStore
from server.storage.database import create_engine, migrate
from server.storage.models import InboundMessage

pytestmark = pytest.mark.asyncio


def _store(database_url: str) -> tuple[InboundStore, async_sessionmaker[AsyncSession]]:
    sessions = async_sessionmaker(create_engine(database_url), expire_on_commit=False)
    return InboundStore(sessions, ReplyKeys("s" * 32, ["k1"], "reply.example")), sessions


async def _one(store: InboundStore, number: int) -> list[int]:
    return await store.store(
        transport="smtp",
        peer="127.0.0.1:25",
        envelope_from=f"sender{number}@partner.example",
        recipients=[f"to{number}a@reply.example", f"to{number}b@reply.example"],
        raw=f"Message-ID: <m{number}@partner.example>\r\n\r\nbody {number}\r\n".encode(),
    )


async def test_messages_stored_together_share_commits_and_each_gets_its_own_rows(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url)
    store, sessions = _store(database_url)
    engine = sessions.kw["bind"]
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _: commits.append(1))
    try:
        count = 12
        ids = await asyncio.gather(*(_one(store, number) for number in range(count)))
        assert len(commits) < count  # some shared a transaction
        assert len({row_id for pair in ids for row_id in pair}) == 2 * count
        async with sessions() as session:
            for number, pair in enumerate(ids):
                rows = list(
                    await session.scalars(
                        select(InboundMessage)
                        .where(InboundMessage.id.in_(pair))
                        .order_by(InboundMessage.id)
                    )
                )
                assert [row.recipient for row in rows] == [
                    f"to{number}a@reply.example",
                    f"to{number}b@reply.example",
                ]
                assert all(row.raw.endswith(f"body {number}\r\n".encode()) for row in rows)
                assert all(row.message_key == f"mid:<m{number}@partner.example>" for row in rows)
                assert all(row.status == "pending" and row.attempts == 0 for row in rows)
    finally:
        await engine.dispose()


async def test_a_sender_gone_while_its_group_commits_costs_the_others_nothing(
    database_url: str,
) -> None:
    """The caller committing a group is cancelled (its SMTP session closed) mid-write: every
    other message of the group is still committed and answered with its own ids."""
    await asyncio.to_thread(migrate, database_url)
    store, sessions = _store(database_url)
    try:
        tasks = [asyncio.create_task(_one(store, number)) for number in range(8)]
        await asyncio.sleep(0)  # the first is committing, the others wait for it
        tasks[0].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        answered = [ids for ids in results[1:] if isinstance(ids, list)]
        assert len(answered) == 7
        async with sessions() as session:
            for number, ids in enumerate(answered, start=1):
                recipients = await session.scalars(
                    select(InboundMessage.recipient).where(InboundMessage.id.in_(ids))
                )
                assert sorted(recipients) == [
                    f"to{number}a@reply.example",
                    f"to{number}b@reply.example",
                ]
    finally:
        await sessions.kw["bind"].dispose()
