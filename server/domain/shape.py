"""What a client may write into a DPIA's document: the template's shape and size caps.

Any client can write a CRDT, so the server checks every client update before it is applied
(``server.realtime.guard``) against these rules, which are pure and shared:

- the server-owned parts (``comments``: who said what, when, through which channel; ``meta``:
  the template the DPIA was made from) are written by the server only;
- a client may create only the roots and keys the DPIA's template defines (rich-text
  fields, the ``values`` entries of simple fields, table rows with the template's columns);
- every field, and the whole document, has a size cap.

A document made from no template (a record-less document a tooling token created) keeps
the server-owned parts and the caps, but any other root name is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.domain.templates import Template

SERVER_OWNED_ROOTS = frozenset({"comments", "meta"})
VALUES_ROOT = "values"
ROW_KEYS = frozenset({"id", "ref"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Size caps, in bytes of the field's encoded content."""

    field_bytes: int
    document_bytes: int


@dataclass(frozen=True, slots=True)
class DocumentShape:
    """The roots and keys a client may write. ``template_id`` None: no template."""

    template_id: str | None
    rich_text: frozenset[str] = frozenset()
    tables: dict[str, frozenset[str]] = field(default_factory=dict)
    values: frozenset[str] = frozenset()
    # What a person calls each root and value key: "Section: Field".
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, name: str) -> str:
        """A field's name as people read it (the root name or key when there is none)."""
        return self.labels.get(name) or _short(name.partition(":")[2] or name)

    @property
    def restricted(self) -> bool:
        return self.template_id is not None

    def root_refusal(self, name: str) -> str | None:
        """Why a client may not create or change the root ``name``, or None."""
        if name in SERVER_OWNED_ROOTS:
            return server_owned_refusal(name)
        if not self.restricted or name == VALUES_ROOT:
            return None
        if name in self.rich_text or name in self.tables:
            return None
        return f"This DPIA's template has no field {_short(name)!r}"

    def value_refusal(self, key: str) -> str | None:
        """Why a client may not set ``values[key]``, or None."""
        if not self.restricted or key in self.values:
            return None
        return f"This DPIA's template has no field {_short(key)!r}"

    def row_refusal(self, table: str, key: str) -> str | None:
        """Why a client may not set ``key`` in a row of the table root ``table``, or None."""
        columns = self.tables.get(table)
        if columns is None or key in columns:
            return None
        return f"{self.label(table)} has no column {_short(key)!r}"


def server_owned_refusal(name: str) -> str:
    if name == "comments":
        return "Comments are written by the server: post them through the comments panel or API"
    return f"The DPIA's {name!r} is written by the server only"


def size_refusal(what: str, size: int, limit: int) -> str | None:
    if size <= limit:
        return None
    return (
        f"{what} would hold {_kib(size)}, over the limit of {_kib(limit)}: "
        "shorten it or split it up"
    )


def shape_of(template: Template | None) -> DocumentShape:
    """The shape a document made from ``template`` may take (None: no template)."""
    if template is None:
        return DocumentShape(None)
    rich_text: set[str] = set()
    tables: dict[str, frozenset[str]] = {}
    values: set[str] = set()
    labels: dict[str, str] = {}
    for section in template.sections:
        for spec in section["fields"]:
            path = f"{section['id']}.{spec['id']}"
            label = f"{section['title']}: {spec['label']}"
            if spec["kind"] == "richtext":
                rich_text.add(f"field:{path}")
                labels[f"field:{path}"] = label
            elif spec["kind"] == "table":
                columns = {column["id"] for column in spec.get("columns", [])}
                tables[f"table:{path}"] = frozenset(ROW_KEYS | columns)
                labels[f"table:{path}"] = label
            else:
                values.add(path)
                labels[path] = label
    return DocumentShape(template.id, frozenset(rich_text), tables, frozenset(values), labels)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB" if size < 1024 * 1024 else f"{size / 1048576:,.1f} MiB"
