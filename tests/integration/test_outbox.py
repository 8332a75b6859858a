"""The outbox worker against a real SMTP server on loopback (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.mail.compose import Outgoing, compose, new_message_id
from server.mail.smtp import SmtpTransport
from server.services import outbox
from server.services.outbox import OutboxWorker, enqueue
from server.storage.database import create_engine, migrate, writer_turn
from tests.support.smtp import Sink, serve_sink

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await asyncio.to_thread(migrate, database_url)
    engine = create_engine(database_url)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _enqueue(sessions: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    ids = []
    async with sessions.begin() as session:
        for i in range(count):
            message_id = new_message_id("opendpia.test")
            mail = Outgoing(
                sender="notifications@opendpia.test",
                recipient=f"person{i}@partner.example",
                recipient_name=f"Person {i}",
                subject=f"Change {i}",
                text=f"Change number {i}",
                html=f"<p>Change number {i}</p>",
                message_id=message_id,
            )
            enqueue(
                session,
                sender=mail.sender,
                recipient=mail.recipient,
                message=compose(mail, installation="test"),
                message_id=message_id,
            )
            ids.append(message_id)
    return ids


def _worker(
    sessions: async_sessionmaker[AsyncSession], port: int, **options: object
) -> OutboxWorker:
    settings: dict[str, object] = {
        "retry_base": timedelta(milliseconds=20),
        "idle_poll_seconds": 0.02,
        "batch": 7,
    }
    settings.update(options)
    return OutboxWorker(sessions, SmtpTransport(f"smtp://127.0.0.1:{port}", timeout=30), **settings)  # type: ignore[arg-type]


async def _run_until(worker: OutboxWorker, done: object, timeout: float = 30) -> None:
    task = asyncio.create_task(worker.run(asyncio.Event()))
    try:
        async with asyncio.timeout(timeout):
            while not done():  # type: ignore[operator]
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _run_until_sent(worker: OutboxWorker, count: int, linger: float = 0.0) -> None:
    """Run the worker until ``count`` deliveries are recorded as sent (a message the sink
    has may not be recorded yet: stopping then would leave it pending), then ``linger``."""
    task = asyncio.create_task(worker.run(asyncio.Event()))
    try:
        async with asyncio.timeout(30):
            while (await worker.counts()).sent < count:
                await asyncio.sleep(0.02)
        await asyncio.sleep(linger)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_messages_reach_the_server_with_their_headers_and_both_parts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sink = Sink()
    server, port = await serve_sink(sink)
    try:
        ids = await _enqueue(sessions, 20)
        worker = _worker(sessions, port)
        await _run_until_sent(worker, 20)
        assert sorted(sink.message_ids()) == sorted(ids)
        first = sink.received[0]
        assert first.rcpt_tos == ["person0@partner.example"]
        assert first.mail_from == "notifications@opendpia.test"
        assert first.message["Auto-Submitted"] == "auto-generated"
        assert first.message.get_body(("html",)) is not None
        counts = await worker.counts()
        assert (counts.pending, counts.sent, counts.failed) == (0, 20, 0)
    finally:
        server.close()


async def test_a_flaky_server_delays_mail_but_every_message_arrives_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sink = Sink(
        script=["421 4.3.2 try later"] * 6 + ["451 4.3.0 local error"] * 6,
        drop_connections=5,
    )
    server, port = await serve_sink(sink)
    try:
        ids = await _enqueue(sessions, 30)
        worker = _worker(sessions, port)
        await _run_until_sent(worker, 30, linger=0.3)  # anything doubled would arrive by then
        assert sorted(sink.message_ids()) == sorted(ids)
        assert not sink.script and sink.drop_connections == 0  # the flakiness did happen
        counts = await worker.counts()
        assert (counts.pending, counts.sent, counts.failed) == (0, 30, 0)
    finally:
        server.close()


async def test_a_message_that_keeps_failing_is_given_up_with_the_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sink = Sink(refuse_all="550 5.1.1 no such mailbox")
    server, port = await serve_sink(sink)
    try:
        await _enqueue(sessions, 3)
        worker = _worker(sessions, port, give_up=timedelta(milliseconds=300))

        async def failed() -> int:
            return (await worker.counts()).failed

        task = asyncio.create_task(worker.run(asyncio.Event()))
        try:
            async with asyncio.timeout(60):
                while await failed() < 3:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        from sqlalchemy import select

        from server.storage.models import OutboxMessage

        async with sessions() as session:
            rows = (await session.scalars(select(OutboxMessage))).all()
        assert {r.status for r in rows} == {"failed"}
        # Given up once the window passed: on a busy machine the first attempt may already be
        # past 300 ms, so how many attempts that took is not this test's to say.
        assert all(r.last_error and "550" in r.last_error and r.attempts >= 1 for r in rows)
        assert sink.received == []
    finally:
        server.close()


async def test_an_unreachable_server_loses_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sink = Sink()
    server, port = await serve_sink(sink)
    server.close()
    await server.wait_closed()
    ids = await _enqueue(sessions, 5)
    worker = _worker(sessions, port)
    await worker.deliver_due()
    counts = await worker.counts()
    assert (counts.pending, counts.sent, counts.failed) == (5, 0, 0)
    server, port2 = await serve_sink(sink)
    try:
        worker = _worker(sessions, port2)
        await _run_until(worker, lambda: len(sink.received) >= 5)
        assert sorted(sink.message_ids()) == sorted(ids)
    finally:
        server.close()


class SwallowingTransport:
    """A mail library that swallows a cancellation arriving mid-send, as Python 3.11's
    ``asyncio.wait_for`` can when the awaited reply lands at the same moment."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[SwallowingTransport]:
        yield self

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.sending.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return  # swallowed: the caller carries on as if the send had finished


async def test_a_worker_stops_when_cancelled_even_if_its_mail_library_swallowed_the_cancel(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _enqueue(sessions, 1)
    transport = SwallowingTransport()
    worker = OutboxWorker(sessions, transport, idle_poll_seconds=0.02)
    task = asyncio.create_task(worker.run(asyncio.Event()))
    await transport.sending.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=30)
    assert task in done and task.cancelled()


async def test_a_round_with_nothing_due_takes_no_writer_s_turn(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    turns: list[object] = []

    def counted_turn(bind: object) -> contextlib.AbstractAsyncContextManager[None]:
        turns.append(bind)
        return writer_turn(bind)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "writer_turn", counted_turn)
    worker = OutboxWorker(sessions, AcceptingTransport())
    assert await worker.deliver_due() == 0
    assert turns == []  # the rooms' commits were not kept waiting by an empty round
    await _enqueue(sessions, 1)
    assert await worker.deliver_due() == 1  # something due: claimed in a write, in turn
    assert len(turns) >= 1


class AcceptingTransport:
    """A mail library whose server takes every message at once."""

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AcceptingTransport]:
        yield self

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        return None
