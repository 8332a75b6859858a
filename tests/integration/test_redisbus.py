"""The Redis bus on a real redis-server: order, no echo, catching up when behind or told to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence

import pytest
import pytest_asyncio

from server.domain.bus import BusKind, BusMessage
from server.storage.redisbus import RedisBus
from tests.support.redisproc import RedisProcess

pytestmark = pytest.mark.asyncio


class Recorder:
    """A DocumentSubscriber that remembers what it was given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, BusMessage]] = []
        self.catch_ups: list[str] = []
        self.notices: list[int] = []

    def deliver(self, document_id: str, messages: Sequence[BusMessage]) -> None:
        self.messages += [(document_id, m) for m in messages]

    def catch_up(self, document_id: str) -> None:
        self.catch_ups.append(document_id)

    def notice(self, user_ids: Iterable[int]) -> None:
        self.notices += list(user_ids)


@contextlib.asynccontextmanager
async def running(bus: RedisBus, recorder: Recorder) -> AsyncIterator[RedisBus]:
    started = asyncio.Event()
    task = asyncio.create_task(bus.run(started, recorder, recorder.notice))
    await asyncio.wait_for(started.wait(), 30)
    try:
        yield bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()


@pytest_asyncio.fixture
async def url(redis_server: RedisProcess) -> str:
    return redis_server.url


async def _until(condition: object, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_messages_reach_other_processes_in_order_and_never_come_back(url: str) -> None:
    a_seen, b_seen = Recorder(), Recorder()
    async with (
        running(RedisBus(url, prefix="t1"), a_seen) as a,
        running(RedisBus(url, prefix="t1"), b_seen) as b,
    ):
        await a.follow("doc")
        await b.follow("doc")
        await b.follow("elsewhere")
        for i in range(200):
            a.publish("doc", BusKind.UPDATE, b"u%d" % i)
        a.publish("doc", BusKind.AWARENESS, b"presence")
        a.publish("unfollowed", BusKind.UPDATE, b"nobody listens")
        await _until(lambda: len(b_seen.messages) == 201)
        assert [m.payload for _, m in b_seen.messages[:200]] == [b"u%d" % i for i in range(200)]
        assert b_seen.messages[200] == ("doc", BusMessage(BusKind.AWARENESS, b"presence"))
        await asyncio.sleep(0.2)
        assert a_seen.messages == []  # a process never hears itself
        assert len(b_seen.messages) == 201  # nor anything about documents it does not follow
        assert b_seen.catch_ups == []

        a.announce([7, 9])
        await _until(lambda: sorted(a_seen.notices) == [7, 9] and sorted(b_seen.notices) == [7, 9])


async def test_a_process_that_fell_behind_a_trimmed_stream_catches_up(url: str) -> None:
    behind = Recorder()
    writer = RedisBus(url, prefix="t2", maxlen=20)
    async with running(writer, Recorder()):
        late = RedisBus(url, prefix="t2", maxlen=20)
        await late.follow("doc")  # its position is taken now; then it stops reading
        for i in range(1000):
            writer.publish("doc", BusKind.UPDATE, b"u%d" % i)
        await _until(lambda: writer.published >= 1000)
        async with running(late, behind):
            await _until(lambda: "doc" in behind.catch_ups)
            # It still receives what the stream holds, and then everything new.
            writer.publish("doc", BusKind.UPDATE, b"after")
            await _until(lambda: behind.messages and behind.messages[-1][1].payload == b"after")
            assert len(behind.messages) < 1000  # some were trimmed away: hence the catch-up


async def test_a_resync_entry_makes_followers_catch_up(url: str) -> None:
    follower = Recorder()
    async with (
        running(RedisBus(url, prefix="t3"), Recorder()) as publisher,
        running(RedisBus(url, prefix="t3"), follower) as other,
    ):
        await other.follow("doc")
        publisher.publish("doc", BusKind.RESYNC, b"")
        await _until(lambda: follower.catch_ups == ["doc"])
        assert follower.messages == []


async def test_after_redis_restarts_followers_catch_up_and_publishing_resumes(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    follower = Recorder()
    async with (
        running(RedisBus(redis_server.url, prefix="t4"), Recorder()) as publisher,
        running(RedisBus(redis_server.url, prefix="t4"), follower) as other,
    ):
        await other.follow("doc")
        publisher.publish("doc", BusKind.UPDATE, b"before")
        await _until(lambda: len(follower.messages) == 1)
        await asyncio.to_thread(redis_server.kill)
        publisher.publish("doc", BusKind.UPDATE, b"lost")  # Redis is down: dropped
        # Started again only once the publisher has given "lost" up: before that, a retry
        # inside the client could still deliver it, however long this waited.
        await _until(lambda: any("not published" in r.getMessage() for r in caplog.records))
        await asyncio.to_thread(redis_server.start)
        await _until(lambda: "doc" in follower.catch_ups)
        publisher.publish("doc", BusKind.UPDATE, b"after")
        await _until(lambda: follower.messages[-1][1].payload == b"after")
        assert b"lost" not in [m.payload for _, m in follower.messages]


async def test_documents_sharing_a_shard_each_get_only_their_own_messages_in_order(
    url: str,
) -> None:
    seen = Recorder()
    async with (
        running(RedisBus(url, prefix="t5", shards=1), Recorder()) as a,
        running(RedisBus(url, prefix="t5", shards=1), seen) as b,
    ):
        await b.follow("one")
        for i in range(50):
            a.publish("one", BusKind.UPDATE, b"one%d" % i)
            a.publish("two", BusKind.UPDATE, b"two%d" % i)  # same shard, not followed
        await _until(lambda: len(seen.messages) == 50)
        # Following another document of a shard already read takes effect at once.
        await b.follow("two")
        for i in range(10):
            a.publish("two", BusKind.UPDATE, b"late%d" % i)
        a.publish("one", BusKind.AWARENESS, b"end")
        await _until(lambda: len(seen.messages) == 61)
        assert [m.payload for d, m in seen.messages if d == "one"] == [
            *(b"one%d" % i for i in range(50)),
            b"end",
        ]
        assert [m.payload for d, m in seen.messages if d == "two"] == [
            b"late%d" % i for i in range(10)
        ]
        b.unfollow("one")
        b.unfollow("two")
        a.publish("one", BusKind.UPDATE, b"nobody")
        await b.follow("three")  # the shard is read again, from its newest entry
        a.publish("three", BusKind.UPDATE, b"three")
        await _until(lambda: seen.messages[-1][0] == "three")
        assert b"nobody" not in [m.payload for _, m in seen.messages]
        assert seen.catch_ups == []
