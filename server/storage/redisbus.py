"""The bus over Redis: sharded streams carrying every document's messages, a broadcast
channel for notification wake-ups.

Keys (all under the configured prefix):

- ``<prefix>:shard:<n>``, ``n`` in ``0 .. shards - 1``: the stream of the documents whose id
  hashes to ``n`` (CRC-32 of the id, modulo ``shards``), trimmed to about ``maxlen``
  entries. Each entry holds the document's id, the kind, the payload and the publishing
  process's id: a message crosses in one ``XADD`` and one read, whatever its document.
- ``<prefix>:wake:<process id>``: a tiny stream the process adds to itself to wake its
  blocking reader when it starts reading another shard.
- ``<prefix>:notices``: pub/sub channel of user ids whose unread count changed.

One reader task per process blocks on ``XREAD`` over the shards of the documents it
follows (and its wake stream), each from its own position, and hands each followed
document's messages to the rooms in order; entries of documents it does not follow are
skipped. Until decision 152 a stream per document and an "activity" stream of document ids
cost two round trips per wake-up (the activity, then the streams with news), two ``XADD``
per publish, and every process read every activity entry. Blocking on every followed
document's stream instead resends the whole key list on each wake-up: with 1,000
documents that cost 2.5 ms of client CPU per read; with shards the list is at most
``shards`` keys. Publishing is one writer task that pipelines whatever is queued, so the
room never waits.

Catching up from the database (``DocumentSubscriber.catch_up``) happens when messages may
have been missed: after the reader lost its connection (a Redis restart empties the
streams), when one read returns a whole stream's worth of entries (entries between the
last position and the stream's head may have been trimmed: every followed document of that
shard catches up), and when another process says it dropped messages (a ``RESYNC`` entry,
published once it can reach Redis again). Publishers publish only committed updates, so the
database always has what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.domain.bus import BusKind, BusMessage, DocumentSubscriber
from server.domain.tasks import stop_if_cancelled
from server.metrics import BUS_PUBLISHED

log = logging.getLogger("opendpia.bus")

RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0
WAKE_MAXLEN = 16
WAKE_TTL_SECONDS = 3600
SHARDS = 16  # decision 152: 64 sent 5 KB of key list to Redis per read, 16 about 2 KB

_KINDS = {kind.value.encode(): kind for kind in BusKind}


def shard_of(document_id: str, shards: int = SHARDS) -> int:
    """The shard a document's messages travel on: the same in every process."""
    return zlib.crc32(document_id.encode()) % shards


def _stream_id(raw: bytes) -> tuple[int, int]:
    milliseconds, _, sequence = raw.partition(b"-")
    return int(milliseconds), int(sequence or 0)


def _older(a: bytes, b: bytes) -> bytes:
    return a if _stream_id(a) <= _stream_id(b) else b


def _newer(a: bytes, b: bytes) -> bytes:
    return b if _stream_id(a) <= _stream_id(b) else a


class RedisBus:
    """A ``Bus`` on Redis streams. Concurrency: used from one event loop."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "opendpia",
        maxlen: int = 1000,
        block_ms: int = 5_000,
        shards: int = SHARDS,
        on_delivered: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self.process_id = uuid.uuid4().hex[:12]
        self._redis: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=block_ms / 1000 + 5,
            health_check_interval=10,
            # A pooled connection that died with a Redis restart is replaced, not reported.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        self._prefix = prefix
        self._maxlen = maxlen
        self._block_ms = block_ms
        self._shards = shards
        self._on_delivered = on_delivered
        self._followed: dict[str, int] = {}  # followed document id -> its shard
        self._shard_documents: dict[int, set[str]] = {}  # shard -> followed documents
        self._positions: dict[int, bytes] = {}  # shard being read -> last stream id read
        self._wake_key = f"{prefix}:wake:{self.process_id}"
        self._wake_position = b"0-0"
        self._wake_renewed = 0.0
        self._outgoing: list[tuple[str, dict[bytes, bytes], int]] = []
        self._have_outgoing = asyncio.Event()
        self._notices_channel = f"{prefix}:notices"
        self._notices: Callable[[Iterable[int]], None] = lambda _ids: None
        self._documents: DocumentSubscriber | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.published = 0
        self.delivered = 0
        self.catch_ups = 0

    def _shard_key(self, shard: int) -> str:
        return f"{self._prefix}:shard:{shard}"

    # -- running ------------------------------------------------------------------------

    async def run(
        self,
        started: asyncio.Event,
        documents: DocumentSubscriber,
        notices: Callable[[Iterable[int]], None],
    ) -> None:
        self._documents = documents
        self._notices = notices
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            subscribed = asyncio.Event()
            tasks.create_task(self._read_notices(subscribed))
            tasks.create_task(self._read_documents())
            tasks.create_task(self._write())
            with contextlib.suppress(TimeoutError):
                # Not reachable at start: run anyway, and catch up once it is.
                async with asyncio.timeout(5):
                    await subscribed.wait()
            started.set()

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    # -- following documents -------------------------------------------------------------

    async def follow(self, document_id: str) -> None:
        shard = shard_of(document_id, self._shards)
        if shard in self._positions:
            # The reader already reads this shard from a position taken before now: it will
            # deliver everything published from here on (and some earlier, harmlessly).
            self._follow(document_id, shard)
            return
        try:
            last: Any = await self._redis.xrevrange(self._shard_key(shard), count=1)
            position = last[0][0] if last else b"0-0"
        except (RedisError, OSError) as error:
            # The reader catches up from the database when Redis is back.
            log.warning("bus: cannot read the position of %s: %s", document_id, error)
            position = b"0-0"
        # Publishers publish only what they have committed: whatever is in the stream up to
        # here is in the database the caller is about to read. Another follow of this shard
        # may have set a position meanwhile: the older one serves both.
        known = self._positions.get(shard)
        self._positions[shard] = position if known is None else _older(known, position)
        self._follow(document_id, shard)
        self._wake_reader()

    def _follow(self, document_id: str, shard: int) -> None:
        self._followed[document_id] = shard
        self._shard_documents.setdefault(shard, set()).add(document_id)

    def unfollow(self, document_id: str) -> None:
        shard = self._followed.pop(document_id, None)
        if shard is None:
            return
        documents = self._shard_documents.get(shard)
        if documents is not None:
            documents.discard(document_id)
            if not documents:
                del self._shard_documents[shard]
                self._positions.pop(shard, None)  # nothing followed there: stop reading it

    def _wake_reader(self) -> None:
        self._queue(self._wake_key, {b"k": b"w"}, maxlen=WAKE_MAXLEN)

    # -- publishing ----------------------------------------------------------------------

    def publish(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        self._queue(
            self._shard_key(shard_of(document_id, self._shards)),
            self._fields(document_id, kind, payload),
            maxlen=self._maxlen,
        )

    def _fields(self, document_id: str, kind: BusKind, payload: bytes) -> dict[bytes, bytes]:
        return {
            b"d": document_id.encode(),
            b"k": kind.value.encode(),
            b"p": payload,
            b"o": self.process_id.encode(),
        }

    def _queue(self, key: str, fields: dict[bytes, bytes], *, maxlen: int) -> None:
        self._outgoing.append((key, fields, maxlen))
        self._have_outgoing.set()

    def announce(self, user_ids: Iterable[int]) -> None:
        ids = ",".join(str(i) for i in user_ids)
        if ids and self._tasks is not None:
            self._tasks.create_task(self._announce(ids))

    async def _announce(self, ids: str) -> None:
        try:
            await self._redis.publish(self._notices_channel, ids)
        except (RedisError, OSError) as error:
            log.warning("bus: notification wake-up not sent: %s", error)
            self._notices(int(i) for i in ids.split(","))  # this process at least

    async def _write(self) -> None:
        while True:
            stop_if_cancelled()
            await self._have_outgoing.wait()
            self._have_outgoing.clear()
            batch, self._outgoing = self._outgoing, []
            if not batch:
                continue
            try:
                await self._send(batch)
                self.published += len(batch)
                BUS_PUBLISHED.inc(len(batch))
            except (RedisError, OSError) as error:
                dropped = {fields[b"d"].decode() for _, fields, _ in batch if b"d" in fields}
                log.warning("bus: %d messages not published (%s)", len(batch), error)
                await self._until_reachable()
                # Reachable again: the others fetch what they missed from the database
                # (it is there: only committed updates are published).
                for document_id in dropped:
                    self.publish(document_id, BusKind.RESYNC, b"")

    async def _send(self, batch: list[tuple[str, dict[bytes, bytes], int]]) -> None:
        """XADD a batch in one round trip: one entry per message, on its document's shard."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, fields, maxlen in batch:
                pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
            now = time.monotonic()
            if now - self._wake_renewed >= WAKE_TTL_SECONDS / 4:
                # The wake stream outlives its process by at most an hour.
                self._wake_renewed = now
                pipe.expire(self._wake_key, WAKE_TTL_SECONDS)
            await pipe.execute()

    async def publish_now(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        """Publish and wait until Redis has it, without ``run`` (one-shot commands)."""
        key = self._shard_key(shard_of(document_id, self._shards))
        await self._send([(key, self._fields(document_id, kind, payload), self._maxlen)])

    async def _until_reachable(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await self._redis.ping()
                return
            except (RedisError, OSError):
                delay = min(RETRY_MAX_SECONDS, delay * 2)

    # -- reading -------------------------------------------------------------------------

    async def _read_documents(self) -> None:
        shard_prefix = f"{self._prefix}:shard:"
        while True:
            stop_if_cancelled()
            try:
                streams: dict[Any, Any] = {self._wake_key: self._wake_position}
                for shard, position in self._positions.items():
                    streams[self._shard_key(shard)] = position
                # Returns at once if any stream has entries past its position.
                replies: Any = await self._redis.xread(
                    streams, count=self._maxlen, block=self._block_ms
                )
                for key, entries in replies or ():
                    name = key.decode()
                    if name == self._wake_key:
                        self._wake_position = entries[-1][0]
                    else:
                        self._receive(int(name[len(shard_prefix) :]), entries)
            except (RedisError, OSError) as error:
                log.warning("bus: reading failed (%s); retrying", error)
                await self._until_reachable()
                # Streams may have been lost (a restart empties them): positions stay, and
                # what was missed meanwhile comes from the database.
                log.warning("bus: reachable again; catching up from the database")
                self._catch_up_all()

    def _receive(self, shard: int, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        position = self._positions.get(shard)
        if position is None:
            return  # nothing followed there any more
        # A follow may have moved the position meanwhile: never go back.
        self._positions[shard] = _newer(position, entries[-1][0])
        if len(entries) >= self._maxlen:
            # A whole stream's worth since the last read: some may have been trimmed away.
            for document_id in list(self._shard_documents.get(shard, ())):
                self._catch_up(document_id)
        own = self.process_id.encode()
        followed = self._followed
        messages: dict[str, list[BusMessage]] = {}
        resync: list[str] = []
        for _id, fields in entries:
            if fields.get(b"o") == own:
                continue
            document_id = fields.get(b"d", b"").decode()
            if document_id not in followed:
                continue
            kind = _KINDS.get(fields.get(b"k", b""))
            if kind is BusKind.RESYNC:
                resync.append(document_id)
            elif kind is not None:
                messages.setdefault(document_id, []).append(BusMessage(kind, fields.get(b"p", b"")))
        for document_id, found in messages.items():
            self.delivered += len(found)
            self._on_delivered(len(found))
            if self._documents is not None:
                self._documents.deliver(document_id, found)
        for document_id in resync:
            self._catch_up(document_id)

    def _catch_up_all(self) -> None:
        for document_id in list(self._followed):
            self._catch_up(document_id)

    def _catch_up(self, document_id: str) -> None:
        if self._documents is not None:
            self.catch_ups += 1
            self._documents.catch_up(document_id)

    async def _read_notices(self, subscribed: asyncio.Event) -> None:
        delay = 0.0
        while True:
            stop_if_cancelled()
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._notices_channel)
                    subscribed.set()
                    delay = 0.0
                    async for message in pubsub.listen():
                        data = message.get("data")
                        if isinstance(data, bytes):
                            self._notices(int(i) for i in data.split(b",") if i.isdigit())
            except (RedisError, OSError) as error:
                log.warning("bus: notification channel lost (%s); retrying", error)
                delay = min(RETRY_MAX_SECONDS, max(RETRY_FIRST_SECONDS, delay * 2))
                await asyncio.sleep(delay)
