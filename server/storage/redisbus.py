"""The bus over Redis: a stream per document, a broadcast channel for notification wake-ups.

Keys (all under the configured prefix):

- ``<prefix>:doc:<document id>``: the document's stream, trimmed to about ``maxlen``
  entries. Each entry holds the kind, the payload and the publishing process's id.
- ``<prefix>:activity``: which documents just got entries (one entry per document per
  publishing batch), trimmed to about ``ACTIVITY_MAXLEN``.
- ``<prefix>:wake:<process id>``: a tiny stream the process adds to itself to wake its
  blocking reader when it starts following a document.
- ``<prefix>:notices``: pub/sub channel of user ids whose unread count changed.

One reader task per process blocks on ``XREAD`` over the activity stream (and its wake
stream), then reads, without blocking, only the followed documents' streams that have news,
each from its own position. Blocking on every followed stream at once would resend the
whole key list on each wake-up: with 1,000 documents that cost 2.5 ms of client CPU per
read, most of a process's bus cost. Every ``SWEEP_SECONDS`` (and whenever activity may have
been missed) all followed streams are read anyway, so a lost activity entry only delays.
Publishing is one writer task that pipelines whatever is queued, so the room never waits.

Catching up from the database (``DocumentSubscriber.catch_up``) happens when messages may
have been missed: after the reader lost its connection (a Redis restart empties the
streams), when one read returns a whole stream's worth of entries (entries between the
last position and the stream's head may have been trimmed), and when another process says
it dropped messages (a ``RESYNC`` entry, published once it can reach Redis again).
Publishers publish only committed updates, so the database always has what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
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
ACTIVITY_MAXLEN = 10_000
ACTIVITY_COUNT = 1_000
SWEEP_SECONDS = 1.0

_KINDS = {kind.value.encode(): kind for kind in BusKind}


class RedisBus:
    """A ``Bus`` on Redis streams. Concurrency: used from one event loop."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "opendpia",
        maxlen: int = 1000,
        block_ms: int = 5_000,
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
        self._on_delivered = on_delivered
        self._positions: dict[str, bytes] = {}  # followed document id -> last stream id read
        self._wake_key = f"{prefix}:wake:{self.process_id}"
        self._wake_position = b"0-0"
        self._activity_key = f"{prefix}:activity"
        self._activity_position: bytes | None = None  # read at start: the newest entry
        self._fresh: set[str] = set()  # followed since the last read: read them once
        self._outgoing: list[tuple[str, dict[bytes, bytes]]] = []
        self._have_outgoing = asyncio.Event()
        self._notices_channel = f"{prefix}:notices"
        self._notices: Callable[[Iterable[int]], None] = lambda _ids: None
        self._documents: DocumentSubscriber | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.published = 0
        self.delivered = 0
        self.catch_ups = 0

    def _key(self, document_id: str) -> str:
        return f"{self._doc_prefix}{document_id}"

    @property
    def _doc_prefix(self) -> str:
        return f"{self._prefix}:doc:"

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
        try:
            last: Any = await self._redis.xrevrange(self._key(document_id), count=1)
        except (RedisError, OSError) as error:
            # The reader catches up from the database when Redis is back.
            log.warning("bus: cannot read the position of %s: %s", document_id, error)
            self._positions[document_id] = b"0-0"
            return
        # Publishers publish only what they have committed: whatever is in the stream up to
        # here is in the database the caller is about to read.
        self._positions[document_id] = last[0][0] if last else b"0-0"
        self._fresh.add(document_id)
        self._wake_reader()

    def unfollow(self, document_id: str) -> None:
        self._positions.pop(document_id, None)

    def _wake_reader(self) -> None:
        self._queue(self._wake_key, {b"k": b"w"}, maxlen=WAKE_MAXLEN)

    # -- publishing ----------------------------------------------------------------------

    def publish(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        fields = {b"k": kind.value.encode(), b"p": payload, b"o": self.process_id.encode()}
        self._queue(self._key(document_id), fields, maxlen=self._maxlen)

    def _queue(self, key: str, fields: dict[bytes, bytes], *, maxlen: int) -> None:
        fields[b"m"] = str(maxlen).encode()
        self._outgoing.append((key, fields))
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
                prefix = f"{self._prefix}:doc:"
                dropped = {key[len(prefix) :] for key, _ in batch if key.startswith(prefix)}
                log.warning("bus: %d messages not published (%s)", len(batch), error)
                await self._until_reachable()
                # Reachable again: the others fetch what they missed from the database
                # (it is there: only committed updates are published).
                for document_id in dropped:
                    self.publish(document_id, BusKind.RESYNC, b"")

    async def _send(self, batch: list[tuple[str, dict[bytes, bytes]]]) -> None:
        """XADD a batch in one round trip, and tell the readers which documents have news."""
        async with self._redis.pipeline(transaction=False) as pipe:
            touched: dict[str, None] = {}
            for key, fields in batch:
                maxlen = int(fields.pop(b"m"))
                pipe.xadd(key, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
                if key.startswith(self._doc_prefix):
                    touched[key[len(self._doc_prefix) :]] = None
            for document_id in touched:
                pipe.xadd(
                    self._activity_key,
                    {b"d": document_id.encode()},
                    maxlen=ACTIVITY_MAXLEN,
                    approximate=True,
                )
            pipe.expire(self._wake_key, WAKE_TTL_SECONDS)
            await pipe.execute()

    async def publish_now(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        """Publish and wait until Redis has it, without ``run`` (one-shot commands)."""
        fields = {b"k": kind.value.encode(), b"p": payload, b"o": self.process_id.encode()}
        fields[b"m"] = str(self._maxlen).encode()
        await self._send([(self._key(document_id), fields)])

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
        swept = time.monotonic()
        while True:
            stop_if_cancelled()
            try:
                if self._activity_position is None:
                    newest: Any = await self._redis.xrevrange(self._activity_key, count=1)
                    self._activity_position = newest[0][0] if newest else b"0-0"
                replies: Any = await self._redis.xread(
                    {
                        self._wake_key: self._wake_position,
                        self._activity_key: self._activity_position,
                    },
                    count=ACTIVITY_COUNT,
                    block=self._block_ms,
                )
                news: set[str] = set()
                sweep = time.monotonic() - swept >= SWEEP_SECONDS
                for key, entries in replies or ():
                    if key.decode() == self._wake_key:
                        self._wake_position = entries[-1][0]
                    else:
                        self._activity_position = entries[-1][0]
                        news.update(fields.get(b"d", b"").decode() for _, fields in entries)
                        sweep = sweep or len(entries) >= ACTIVITY_COUNT  # more may wait
                news |= self._fresh
                self._fresh.clear()
                if sweep:
                    swept = time.monotonic()
                    news = set(self._positions)
                await self._read_streams(news)
            except (RedisError, OSError) as error:
                log.warning("bus: reading failed (%s); retrying", error)
                await self._until_reachable()
                # Streams may have been lost (a restart empties them): positions stay, and
                # what was missed meanwhile comes from the database.
                log.warning("bus: reachable again; catching up from the database")
                self._activity_position = None
                self._catch_up_all()

    async def _read_streams(self, document_ids: set[str]) -> None:
        """Read what the followed documents among ``document_ids`` have, without blocking."""
        streams: dict[Any, Any] = {
            self._key(d): self._positions[d] for d in document_ids if d in self._positions
        }
        if not streams:
            return
        while streams:
            replies: Any = await self._redis.xread(streams, count=self._maxlen)
            full = {}
            for key, entries in replies or ():
                self._receive(key.decode(), entries)
                if len(entries) >= self._maxlen:  # more may follow: read on at once
                    full[key] = entries[-1][0]
            streams = full

    def _receive(self, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if key == self._wake_key:
            self._wake_position = entries[-1][0]
            return
        document_id = key[len(self._prefix) + len(":doc:") :]
        if document_id not in self._positions:
            return  # unfollowed meanwhile
        self._positions[document_id] = entries[-1][0]
        if len(entries) >= self._maxlen:
            # A whole stream's worth since the last read: some may have been trimmed away.
            self._catch_up(document_id)
        messages = []
        resync = False
        own = self.process_id.encode()
        for _id, fields in entries:
            if fields.get(b"o") == own:
                continue
            kind = _KINDS.get(fields.get(b"k", b""))
            if kind is BusKind.RESYNC:
                resync = True
            elif kind is not None:
                messages.append(BusMessage(kind, fields.get(b"p", b"")))
        if messages and self._documents is not None:
            self.delivered += len(messages)
            self._on_delivered(len(messages))
            self._documents.deliver(document_id, messages)
        if resync:
            self._catch_up(document_id)

    def _catch_up_all(self) -> None:
        for document_id in list(self._positions):
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
