"""Checking a client's update before the room applies it.

A CRDT update cannot be taken back once a document has integrated it, and its binary form
does not say plainly which parts of the document it touches. So each room keeps a shadow
copy of its document: a client's update is applied to the shadow first, observers on the
shadow see exactly what it changed (which roots, which keys, which values), and only an
update that keeps to ``server.domain.shape`` goes on to the room's document, the log and
the peers. A refused update leaves the shadow changed, so the shadow is rebuilt from the
room's document (rare: only a faulty or hostile client is refused). Every other change
(server-side edits, other processes' updates) is mirrored into the shadow unchecked.

The cost is one more ``apply_update`` per client update, plus measuring the fields it
touched (rich text and tables only when touched). The shadow itself is built when first
needed (the first check) or when the room asks (``prepare``, a second after it answered
the last of the clients joining), not while a freshly loaded room makes people wait for
the document: for a large document building it costs as much as loading it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pycrdt import (
    Array,
    ArrayEvent,
    Doc,
    Map,
    MapEvent,
    Subscription,
    Text,
    XmlElement,
    XmlFragment,
    XmlText,
)

from server.domain.documents import root_names
from server.domain.shape import (
    SERVER_OWNED_ROOTS,
    VALUES_ROOT,
    DocumentShape,
    Limits,
    server_owned_refusal,
    size_refusal,
)

_SHARED_TYPES = (Array, Map, Text, XmlElement, XmlFragment, XmlText)


class UpdateRefused(Exception):
    """The update touches what the client may not write; the message says what."""


class UpdateGuard:
    """The shadow document of one room and the rules it checks. Event loop only."""

    def __init__(self, shape: DocumentShape, limits: Limits, source: Callable[[], bytes]) -> None:
        self._shape = shape
        self._limits = limits
        self._source = source
        self._subscriptions: list[tuple[Any, Subscription]] = []
        self._problem: str | None = None
        self._touched: set[str] = set()
        self._doc: Doc[Any] | None = None

    @property
    def prepared(self) -> bool:
        """Whether the shadow is built."""
        return self._doc is not None

    def prepare(self) -> None:
        """Build the shadow now if it is not built yet."""
        if self._doc is None:
            self._build()

    # -- the shadow --------------------------------------------------------------------

    def _build(self) -> Doc[Any]:
        state = self._source()
        doc: Doc[Any] = Doc()
        doc.apply_update(state)
        self._doc = doc
        self._size = len(state)
        self._subscriptions = []
        for name in SERVER_OWNED_ROOTS:
            self._observe(doc.get(name, type=Map), self._on_server_owned(name))
        self._observe(doc.get(VALUES_ROOT, type=Map), self._on_values)
        for name in self._shape.rich_text:
            self._observe(doc.get(name, type=XmlFragment), self._on_touched(name))
        for name in self._shape.tables:
            self._observe(doc.get(name, type=Array), self._on_table(name))
        self._known_roots = root_names(doc)
        return doc

    def _observe(self, root: Any, callback: Callable[[list[Any]], None]) -> None:
        self._subscriptions.append((root, root.observe_deep(lambda events, *_: callback(events))))

    def _rebuild(self) -> None:
        for root, subscription in self._subscriptions:
            root.unobserve(subscription)
        self._build()

    def follow(self, update: bytes) -> None:
        """Mirror a change that was not checked here (server-side, another process)."""
        if self._doc is None:
            return  # not built yet: it will be built from a source that has the change
        self._doc.apply_update(update)
        self._size += len(update)

    # -- checking ----------------------------------------------------------------------

    def check(self, update: bytes) -> None:
        """Take ``update`` into the shadow if it keeps to the rules, else raise
        UpdateRefused (ValueError: it is not an update at all)."""
        self._problem = None
        self._touched.clear()
        doc = self._doc if self._doc is not None else self._build()
        try:
            doc.apply_update(update)
        except ValueError:
            self._rebuild()
            raise
        problem = self._problem or self._new_roots_problem() or self._size_problem(update)
        if problem is not None:
            self._rebuild()
            raise UpdateRefused(problem)

    def _new_roots_problem(self) -> str | None:
        assert self._doc is not None
        roots = root_names(self._doc)
        if len(roots) == len(self._known_roots):
            return None
        for name in roots - self._known_roots:
            refusal = self._shape.root_refusal(name)
            if refusal is not None:
                return refusal
        self._known_roots = roots
        return None

    def _size_problem(self, update: bytes) -> str | None:
        assert self._doc is not None
        limit = self._limits.field_bytes
        for name in self._touched:
            if name.startswith("field:"):
                size = len(str(self._doc.get(name, type=XmlFragment)).encode())
            else:
                size = len(str(self._doc.get(name, type=Array)).encode())
            refusal = size_refusal(self._shape.label(name), size, limit)
            if refusal is not None:
                return refusal
        self._size += len(update)
        if self._size > self._limits.document_bytes:
            # The running sum over-counts (edits merge, deletions shrink): measure exactly.
            self._size = len(self._doc.get_update())
            return size_refusal("The document", self._size, self._limits.document_bytes)
        return None

    def _refuse(self, problem: str) -> None:
        if self._problem is None:
            self._problem = problem

    def _on_server_owned(self, name: str) -> Callable[[list[Any]], None]:
        def seen(_events: list[Any]) -> None:
            self._refuse(server_owned_refusal(name))

        return seen

    def _on_touched(self, name: str) -> Callable[[list[Any]], None]:
        def seen(_events: list[Any]) -> None:
            self._touched.add(name)

        return seen

    def _on_values(self, events: list[Any]) -> None:
        for event in events:
            if not isinstance(event, MapEvent) or _path(event):
                self._refuse("A field's value must be plain data")
                return
            for key, change in _keys(event).items():
                if change.get("action") == "delete":
                    continue
                refusal = self._shape.value_refusal(key) or _plain_refusal(
                    self._shape.label(key), change.get("newValue"), self._limits.field_bytes
                )
                if refusal is not None:
                    self._refuse(refusal)
                    return

    def _on_table(self, name: str) -> Callable[[list[Any]], None]:
        def seen(events: list[Any]) -> None:
            self._touched.add(name)
            for event in events:
                if isinstance(event, ArrayEvent) and not _path(event):
                    delta: list[dict[str, Any]] = getattr(event, "delta", [])
                    for op in delta:
                        for row in op.get("insert", ()):
                            if not isinstance(row, Map):
                                self._refuse(f"A row of {self._shape.label(name)} must be a map")
                                return
                            for key in list(row.keys()):
                                self._check_cell(name, str(key), row[key])
                elif isinstance(event, MapEvent) and len(_path(event)) == 1:
                    for key, change in _keys(event).items():
                        if change.get("action") != "delete":
                            self._check_cell(name, key, change.get("newValue"))
                else:
                    self._refuse(f"A cell of {self._shape.label(name)} must hold plain data")

        return seen

    def _check_cell(self, table: str, key: str, value: Any) -> None:
        refusal = self._shape.row_refusal(table, key) or _plain_refusal(
            f"{self._shape.label(table)} ({key[:40]})", value, self._limits.field_bytes
        )
        if refusal is not None:
            self._refuse(refusal)


def _plain_refusal(what: str, value: Any, limit: int) -> str | None:
    if isinstance(value, _SHARED_TYPES):
        return f"{what} must hold plain data"
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return f"{what} must hold plain data"
    return size_refusal(what, size, limit)


def _path(event: Any) -> list[Any]:
    """Where in the root an event happened (pycrdt's events carry attributes untyped)."""
    path: list[Any] = getattr(event, "path", [])
    return path


def _keys(event: Any) -> dict[str, dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = getattr(event, "keys", {})
    return keys
