"""The bus between server processes: its port, and what travels on it.

With one process (the embedded default) the bus is in-process and documents never leave
it. With several processes, each document's updates and awareness go out on its shard of
the bus (one of a fixed number of streams, by a hash of the document id; with the DPIA's
lock when its status changes), and notification wake-ups on a broadcast channel
(``server/storage/redisbus.py``).

What the bus promises, and what it does not:

- A process publishes an update only once it has committed it: another process never
  holds, nor lets its clients build on, a change that a crash could still lose.
- ``publish`` never blocks and never raises: a message that cannot be sent is dropped and
  the other processes are told, once the bus is back, to catch up from the database.
- Messages of one document arrive in the order one process published them.
- A subscriber may miss messages (a process that fell behind a bounded stream, a bus that
  restarted); it is then asked to ``catch_up`` from the database instead. Applying a CRDT
  update twice changes nothing, so delivering one twice is harmless.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class BusKind(enum.StrEnum):
    UPDATE = "u"  # a CRDT update, already committed or about to be by its publisher
    AWARENESS = "a"  # y-protocols awareness entries (presence, carets)
    RESYNC = "r"  # the publisher lost messages: catch up from the database
    LOCK = "l"  # the DPIA was locked (payload: why, UTF-8) or unlocked (empty payload)
    ACCESS = "x"  # who may do what changed: decide every connection again (empty payload)


@dataclass(frozen=True, slots=True)
class BusMessage:
    kind: BusKind
    payload: bytes


class DocumentSubscriber(Protocol):
    """What the bus delivers to (the process's rooms). Called on the event loop."""

    def deliver(self, document_id: str, messages: Sequence[BusMessage]) -> None:
        """Messages from other processes about a followed document, in order."""
        ...

    def catch_up(self, document_id: str) -> None:
        """Messages may have been missed: bring the document up to date from the database."""
        ...


class Bus(Protocol):
    """Carries documents' changes and notification wake-ups between processes."""

    async def run(
        self,
        started: asyncio.Event,
        documents: DocumentSubscriber,
        notices: Callable[[Iterable[int]], None],
    ) -> None:
        """Deliver until cancelled; set ``started`` once subscribed."""
        ...

    async def follow(self, document_id: str) -> None:
        """Start delivering a document's messages; call it *before* loading the document.

        Delivery starts at the stream's newest entry: since only committed updates are
        published, everything before it is in the database the caller then loads.
        """
        ...

    def unfollow(self, document_id: str) -> None: ...

    def publish(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        """Send to the other processes following ``document_id``; never blocks."""
        ...

    def announce(self, user_ids: Iterable[int]) -> None:
        """Wake every process's listeners of these users (their unread count changed)."""
        ...

    async def ping(self) -> None:
        """Raise if the bus cannot be reached (readiness)."""
        ...

    async def close(self) -> None: ...


class LocalBus:
    """The in-process bus: one process holds every room, so documents need no delivery."""

    def __init__(self) -> None:
        self._notices: Callable[[Iterable[int]], None] | None = None

    async def run(
        self,
        started: asyncio.Event,
        documents: DocumentSubscriber,
        notices: Callable[[Iterable[int]], None],
    ) -> None:
        self._notices = notices
        started.set()
        await asyncio.Event().wait()

    async def follow(self, document_id: str) -> None:
        return None

    def unfollow(self, document_id: str) -> None:
        return None

    def publish(self, document_id: str, kind: BusKind, payload: bytes) -> None:
        return None

    def announce(self, user_ids: Iterable[int]) -> None:
        if self._notices is not None:
            self._notices(user_ids)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
