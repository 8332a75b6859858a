"""Inbound mail stored before 250: concurrent messages share a commit, each gets its rows."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.replies import ReplyKeys
from server.services.inbound import InboundStore
from server.storage.database import create_engine, migrate
from server.storage.models import InboundMessage

pytestmark = pytest.mark.asyncio


async def test_messages_stored_together_share_commits_and_each_gets_its_own_rows(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _: commits.append(1))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    store = InboundStore(sessions, ReplyKeys("s" * 32, ["k1"], "reply.example"))
    try:
        count = 12

        async def one(number: int) -> list[int]:
            return await store.store(
                transport="smtp",
                peer="127.0.0.1:25",
                envelope_from=f"sender{number}@partner.example",
                recipients=[f"to{number}a@reply.example", f"to{number}b@reply.example"],
                raw=f"Message-ID: <m{number}@partner.example>\r\n\r\nbody {number}\r\n".encode(),
            )

        ids = await asyncio.gather(*(one(number) for number in range(count)))
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
