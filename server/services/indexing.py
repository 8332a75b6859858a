"""Keeping the search index up to date, off the editing path.

The group committer tells the indexer which documents it has just committed
(``notify``: a dict write, never a wait). A document is indexed ``delay_seconds`` after the
first commit it has not yet been indexed for, so someone typing steadily has their words
searchable within about that long, and a document written to many times a second is read
and indexed once per delay rather than once per keystroke. Documents due together are
indexed in one transaction.

A sweep (at start, then every ``sweep_seconds``) indexes whatever is missing or behind its
log: documents made without an editor (created, imported, seeded by a command), renamed,
or committed by a process that stopped before its delay ran out. Every process sharing a
PostgreSQL database indexes what it commits; ``SearchIndex.write`` keeps the newest
reading, so the processes never undo each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from server.domain.tasks import stop_if_cancelled
from server.services.search import SearchIndex

log = logging.getLogger("opendpia.search")
SWEEP_BATCH = 200
RETRY_SECONDS = 2.0


class SearchIndexer:
    """Runs as one task; ``notify`` never blocks."""

    def __init__(
        self,
        index: SearchIndex,
        *,
        delay_seconds: float,
        sweep_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._delay = delay_seconds
        self._sweep_every = sweep_seconds
        self._clock = clock
        self._due: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._next_sweep = 0.0  # at start
        self._unreadable: set[str] = set()
        self.passes = 0

    def notify(self, document_ids: Iterable[str]) -> None:
        """These documents have new committed content (called after each commit)."""
        due = self._clock() + self._delay
        added = False
        for document_id in document_ids:
            if document_id not in self._due:
                self._due[document_id] = due
                added = True
        if added:
            self._wake.set()

    async def run(self, started: asyncio.Event) -> None:
        started.set()
        while True:
            stop_if_cancelled()
            now = self._clock()
            wait = min([self._next_sweep, *self._due.values()]) - now
            if wait > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                continue
            ready = [d for d, at in self._due.items() if at <= now]
            for document_id in ready:
                del self._due[document_id]
            if ready:
                await self._index_now(ready)
            if self._next_sweep <= self._clock():
                await self._sweep()

    async def _index_now(self, document_ids: list[str]) -> None:
        try:
            await self._index.index(document_ids)
            self.passes += 1
        except Exception:
            log.exception("could not index %d documents; trying again", len(document_ids))
            later = self._clock() + RETRY_SECONDS
            for document_id in document_ids:
                self._due.setdefault(document_id, later)

    async def _sweep(self) -> None:
        """One batch of stale documents; the next batch runs on the next turn of the loop,
        after the documents that came due meanwhile."""
        self._next_sweep = self._clock() + self._sweep_every
        try:
            stale = [
                d
                for d in await self._index.stale(SWEEP_BATCH)
                if d not in self._due and d not in self._unreadable
            ]
            if stale:
                written = await self._index.index(stale)
                if written < len(stale):  # no stored content: stale for good until edited
                    self._unreadable.update(stale)
                self._next_sweep = self._clock()
            else:
                self._unreadable.clear()
        except Exception:
            log.exception("the search index sweep failed; it runs again later")
