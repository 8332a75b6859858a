"""Group commit: the changes of all rooms that arrive together go to disk in one transaction.

While one transaction is in flight, the next batch gathers; so under load each fsync
carries many updates, and an idle server commits a lone update within a few milliseconds.
A failing batch is retried per document, so one room whose rows cannot be written never
holds back the others; its entries are retried with backoff and never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.domain.documents import UpdateRecord, UpdateStore
from server.domain.tasks import stop_if_cancelled
from server.metrics import COMMIT_SECONDS
from server.realtime.peer import Peer

if TYPE_CHECKING:
    from server.realtime.room import Room

log = logging.getLogger("opendpia.realtime.commit")

RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0


@dataclass(slots=True)
class CommitEntry:
    """A logged change (or, with no record, a marker that orders an acknowledgement)."""

    room: Room
    record: UpdateRecord | None
    peer: Peer | None
    write_number: int


class GroupCommitter:
    """Writes rooms' changes in batches. Runs as one task; ``submit`` never blocks."""

    def __init__(
        self,
        store: UpdateStore,
        *,
        window_seconds: float = 0.002,
        on_committed: Callable[[Iterable[str]], None] | None = None,
    ) -> None:
        self._store = store
        # Told which documents were just committed (the search index); must not block.
        self._on_committed = on_committed
        self._window = window_seconds
        self._pending: list[CommitEntry] = []
        self._wake = asyncio.Event()
        self._retry_delay = 0.0
        self._compacting: set[str] = set()
        self._no_compaction = asyncio.Event()
        self._no_compaction.set()
        self._tasks: asyncio.TaskGroup | None = None
        self.commits = 0
        self.compactions = 0

    def submit(self, room: Room, record: UpdateRecord | None, peer: Peer | None, n: int) -> None:
        self._pending.append(CommitEntry(room, record, peer, n))
        self._wake.set()

    async def run(self, started: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            started.set()
            while True:
                stop_if_cancelled()
                await self._wake.wait()
                if self._retry_delay:
                    await asyncio.sleep(self._retry_delay)
                elif self._window:
                    await asyncio.sleep(self._window)
                self._wake.clear()
                batch, self._pending = self._pending, []
                if batch:
                    await self._commit(batch)

    async def _commit(self, batch: list[CommitEntry]) -> None:
        records = [entry.record for entry in batch if entry.record is not None]
        failed: set[str] = set()
        try:
            began = time.perf_counter()
            await self._store.append(records)
            COMMIT_SECONDS.observe(time.perf_counter() - began)
        except Exception:
            log.exception("group commit of %d updates failed; retrying per document", len(records))
            failed = await self._commit_per_document(records)
        done: dict[Room, list[CommitEntry]] = defaultdict(list)
        retry: list[CommitEntry] = []
        for entry in batch:
            if entry.room.document_id in failed:
                retry.append(entry)
            else:
                done[entry.room].append(entry)
        if retry:
            self._pending[:0] = retry
            self._retry_delay = min(
                RETRY_MAX_SECONDS, max(RETRY_FIRST_SECONDS, self._retry_delay * 2)
            )
            self._wake.set()
        else:
            self._retry_delay = 0.0
        self.commits += 1
        if self._on_committed is not None and records:
            try:
                self._on_committed({r.document_id for r in records if r.document_id not in failed})
            except Exception:
                log.exception("could not pass on the documents just committed")
        for room, entries in done.items():
            try:
                room.committed(entries)
            except Exception:
                log.exception("room %s failed after commit", room.document_id)
            self.compact_if_due(room)

    async def _commit_per_document(self, records: list[UpdateRecord]) -> set[str]:
        by_document: dict[str, list[UpdateRecord]] = defaultdict(list)
        for record in records:
            by_document[record.document_id].append(record)
        failed = set()
        for document_id, rows in by_document.items():
            try:
                await self._store.append(rows)
            except Exception:
                log.exception("commit for document %s failed; will retry", document_id)
                failed.add(document_id)
        return failed

    def compact_if_due(self, room: Room, *, leaving: bool = False) -> None:
        """Start compacting the room's document if its log tail has grown past the
        threshold (or, for a room ``leaving`` memory, holds anything) and no compaction of
        it is under way (and the committer runs)."""
        if (
            (room.tail_length > 0 if leaving else room.wants_compaction())
            and room.document_id not in self._compacting
            and self._tasks is not None
        ):
            room.tail_length = 0
            self._compacting.add(room.document_id)
            self._no_compaction.clear()
            self._tasks.create_task(self._compact(room))

    async def _compact(self, room: Room) -> None:
        document_id = room.document_id
        try:
            seq = await self._store.compact(document_id)
            if seq is not None:
                self.compactions += 1
                log.debug("document %s compacted at seq %d", document_id, seq)
        except Exception:
            log.exception("compaction of document %s failed; the log is intact", document_id)
        finally:
            self._compacting.discard(document_id)
            # Commits made while this ran were not compacted, and a burst can commit many
            # times the threshold meanwhile: without this the tail stayed that long (every
            # later load applying it row by row) until the next edit.
            with contextlib.suppress(RuntimeError):  # the task group is shutting down
                self.compact_if_due(room)
            if not self._compacting:
                self._no_compaction.set()

    async def idle(self) -> None:
        """Wait until no compaction runs (for shutdown and tests)."""
        await self._no_compaction.wait()
