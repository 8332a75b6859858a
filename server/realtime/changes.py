"""Deriving debounced change events from a room's document.

The tracker observes the template's fields (rich-text fragments, table arrays, the
``values`` map) and, while a change is applied, asks the room who is writing. Entries are
keyed by (actor, field); one is emitted once it has been quiet for ``quiet_seconds``, or
when the room closes. Observers never raise: pycrdt would fail the whole transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, Subscription, XmlFragment

from server.domain.changes import ChangeEvent
from server.domain.documents import root_names
from server.domain.tasks import stop_if_cancelled
from server.domain.templates import Template

log = logging.getLogger("opendpia.realtime.changes")
_TAGS = re.compile(r"<[^>]*>")
EXCERPT = 200


@dataclass(slots=True)
class _Burst:
    channel: str
    row: str | None
    first: float
    last: float
    edits: int


Writer = Callable[[], tuple[str, str] | None]


class ChangeTracker:
    def __init__(
        self,
        document_id: str,
        template: Template,
        *,
        quiet_seconds: float,
        writer: Writer,
        emit: Callable[[ChangeEvent], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._document_id = document_id
        self._template = template
        self._quiet = quiet_seconds
        self._writer = writer
        self._emit = emit
        self._clock = clock
        self._bursts: dict[tuple[str, str], _Burst] = {}
        self._subscriptions: list[tuple[Any, Subscription]] = []
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._doc: Doc[Any] | None = None

    def attach(self, doc: Doc[Any]) -> None:
        """Observe every field of the template in ``doc`` (after its history is loaded)."""
        self._doc = doc
        for section in self._template.sections:
            for field in section["fields"]:
                path = f"{section['id']}.{field['id']}"
                try:
                    if field["kind"] == "richtext":
                        fragment = doc.get(f"field:{path}", type=XmlFragment)
                        self._observe(fragment, fragment.observe_deep(self._on_text(path)))
                    elif field["kind"] == "table":
                        table = doc.get(f"table:{path}", type=Array)
                        self._observe(table, table.observe_deep(self._on_table(path)))
                except Exception:  # a root of another type: no events for it, never an error
                    log.warning(
                        "document %s: %s is not what the template says", self._document_id, path
                    )
        values = doc.get("values", type=Map)
        self._observe(values, values.observe(self._on_values))

    def _observe(self, shared: Any, subscription: Subscription) -> None:
        self._subscriptions.append((shared, subscription))

    def _on_text(self, path: str) -> Callable[[Any], None]:
        def observed(_events: Any) -> None:
            self._touch(path, None)

        return observed

    def _on_table(self, path: str) -> Callable[[Any], None]:
        def observed(events: list[ArrayEvent | MapEvent]) -> None:
            row = None
            try:
                for event in events:
                    target = getattr(event, "target", None)
                    if isinstance(target, Map):
                        row = str(target.get("ref") or target.get("id") or "") or None
            except Exception:
                row = None
            self._touch(path, row)

        return observed

    def _on_values(self, event: MapEvent) -> None:
        try:
            keys = list(getattr(event, "keys", {}))
        except Exception:
            return
        for key in keys:
            self._touch(str(key), None)

    def _touch(self, field: str, row: str | None) -> None:
        try:
            writer = self._writer()
            if writer is None:
                return
            actor, channel = writer
            now = self._clock()
            burst = self._bursts.get((actor, field))
            if burst is None:
                self._bursts[(actor, field)] = _Burst(channel, row, now, now, 1)
            else:
                burst.last = now
                burst.edits += 1
                burst.row = row or burst.row
            if self._sweep_handle is None:
                loop = asyncio.get_running_loop()
                self._sweep_handle = loop.call_later(self._quiet, self._sweep)
        except Exception:
            log.exception("document %s: could not track a change", self._document_id)

    def _sweep(self) -> None:
        self._sweep_handle = None
        now = self._clock()
        for key, burst in list(self._bursts.items()):
            if now - burst.last >= self._quiet:
                del self._bursts[key]
                self._send(key, burst)
        if self._bursts:
            wait = min(self._quiet - (now - b.last) for b in self._bursts.values())
            loop = asyncio.get_running_loop()
            self._sweep_handle = loop.call_later(max(wait, 0.01), self._sweep)

    def _send(self, key: tuple[str, str], burst: _Burst) -> None:
        actor, field = key
        try:
            self._emit(
                ChangeEvent(
                    self._document_id,
                    actor,
                    burst.channel,
                    field,
                    burst.row,
                    datetime.fromtimestamp(burst.first, UTC),
                    datetime.fromtimestamp(burst.last, UTC),
                    burst.edits,
                    self._excerpt(field, burst.row),
                )
            )
        except Exception:
            log.exception("document %s: could not emit a change event", self._document_id)

    def _excerpt(self, field: str, row: str | None) -> str:
        """A short plain-text view of the field as it is now (never markup)."""
        doc = self._doc
        if doc is None:
            return ""
        try:
            text = ""
            roots = root_names(doc)
            if f"field:{field}" in roots:
                xml = str(doc.get(f"field:{field}", type=XmlFragment))
                text = html.unescape(_TAGS.sub(" ", xml))
            elif f"table:{field}" in roots and row is not None:
                for item in doc.get(f"table:{field}", type=Array):
                    if isinstance(item, Map) and row in (item.get("ref"), item.get("id")):
                        text = f"{row}: {item.get('title') or ''}"
            else:
                value = doc.get("values", type=Map).get(field)
                text = ", ".join(map(str, value)) if isinstance(value, list) else str(value or "")
            return " ".join(text.split())[:EXCERPT]
        except Exception:
            return ""

    def close(self) -> None:
        """Emit what is pending and stop observing."""
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        for key, burst in list(self._bursts.items()):
            self._send(key, burst)
        self._bursts.clear()
        for shared, subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                shared.unobserve(subscription)
        self._subscriptions.clear()


class ChangeRecorder:
    """Writes emitted events in batches, off the editing path. Runs as one task."""

    def __init__(self, record: Callable[[list[ChangeEvent]], Any]) -> None:
        self._record = record
        self._pending: list[ChangeEvent] = []
        self._wake = asyncio.Event()
        self.recorded = 0

    def submit(self, event: ChangeEvent) -> None:
        self._pending.append(event)
        self._wake.set()

    async def run(self, started: asyncio.Event) -> None:
        started.set()
        try:
            while True:
                stop_if_cancelled()
                await self._wake.wait()
                self._wake.clear()
                await self._write()
        finally:
            await asyncio.shield(self._write())

    async def _write(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._record(batch)
            self.recorded += len(batch)
        except Exception:
            log.exception("could not record %d change events; keeping them", len(batch))
            self._pending[:0] = batch
            await asyncio.sleep(1)
            self._wake.set()
