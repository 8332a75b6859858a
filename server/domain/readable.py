"""How a DPIA's content reads to a person: the one view the PDF, the Word file, the
past-version page and the field-by-field comparisons show.

Every value prints as what its author chose it by, never as the stored code: an option as
its label from the template, a yes/no as Yes or No, a date as "3 March 2027", a reference
to another table's row (``options_from``) as that row's ref and title, rich text as its
paragraphs and list items. A table is a grid with the template's column labels when it
has few columns (:data:`GRID_COLUMNS`); a wider one (the risk register, the processing
operations, the measures) is one small table per row, a card of label and value pairs,
which an A4 page can hold. The risk register's cards add each risk's level before and
after measures (server/domain/risk.py), and the outcome section its computed values.

Pure: template and canonical content in, plain strings and tuples out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any

from server.domain.content import WHOLE, Content, find_row, is_empty, split_target
from server.domain.risk import (
    INHERENT,
    RESIDUAL,
    Assessment,
    RiskMatrix,
    overall_residual_text,
    register_path,
    register_rows,
    residual_high_accepted,
)
from server.domain.templates import Template

GRID_COLUMNS = 6  # wider tables print one card per row
NOT_ANSWERED = "Not answered"
NO_ROWS = "None recorded"
EMPTY_CELL = "—"
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class Text:
    """Lines of text: paragraphs, list items ("• …", "1. …") or one value."""

    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Grid:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Cards:
    cards: tuple[Card, ...]


Block = Text | Grid | Cards


@dataclass(frozen=True, slots=True)
class FieldView:
    path: str
    label: str
    block: Block
    empty: bool
    is_register: bool = False


@dataclass(frozen=True, slots=True)
class SectionView:
    id: str
    title: str
    fields: tuple[FieldView, ...]


# -- single values ---------------------------------------------------------------------------


def long_date(value: date | datetime | str) -> str:
    """``2027-03-03`` → "3 March 2027" (English whatever the machine's locale)."""
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return value
    else:
        day = value
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def long_time(value: datetime) -> str:
    """A moment as "2 December 2026, 14:05 UTC" (the value is in UTC)."""
    return f"{long_date(value)}, {value:%H:%M} UTC"


def _option_label(spec: Mapping[str, Any], value: Any) -> str:
    for option in spec.get("options") or []:
        if option["value"] == value:
            return str(option["label"])
    return f"{value} (not an option of this template)"


def _row_label(table: Mapping[str, Any], row: Mapping[str, Any]) -> str:
    """A row as the editor names it: its ref and its first filled text column."""
    ref = str(row.get("ref") or "")
    for column in table.get("columns") or []:
        if column["kind"] in ("text", "longtext"):
            text = row.get(column["id"])
            if isinstance(text, str) and text.strip():
                line = text.strip().split("\n")[0]
                line = line if len(line) <= 80 else line[:79] + "…"
                return f"{ref} {line}".strip()
    return ref


class _Reader:
    """Formats values of one template against one DPIA's content."""

    def __init__(self, template: Template, content: Content) -> None:
        self.template = template
        self.content = content
        self._fields = {f"{s['id']}.{f['id']}": f for s in template.sections for f in s["fields"]}

    @cached_property
    def matrix(self) -> RiskMatrix:
        """The template's risk matrix, read when a risk is (a template without risks, such
        as a project's idea or its ISA, has none)."""
        return RiskMatrix.from_template(self.template.content)

    def rows_of(self, path: str) -> list[dict[str, Any]]:
        section, _, field = path.partition(".")
        rows = self.content.get(section, {}).get(field)
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    def values(self, spec: Mapping[str, Any], value: Any) -> list[str]:
        """A structured value as the labels (or words) a person reads, one per item."""
        if is_empty(value) and value is not False:
            return []
        kind = spec["kind"]
        if kind == "yesno":
            return ["Yes" if value is True else "No" if value is False else str(value)]
        if kind == "date":
            return [long_date(str(value))]
        if kind == "number":
            return [
                str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
            ]
        if kind == "choice":
            return [_option_label(spec, value)]
        if kind == "multichoice":
            items = value if isinstance(value, list) else [value]
            source = spec.get("options_from")
            if source:
                table = self._fields.get(source, {})
                by_id = {r.get("id"): r for r in self.rows_of(source)}
                return [
                    _row_label(table, by_id[i]) if i in by_id else "A row since deleted"
                    for i in items
                ]
            return [_option_label(spec, item) for item in items]
        return [str(value)]

    def cell(self, spec: Mapping[str, Any], value: Any) -> str:
        return "; ".join(self.values(spec, value)) or EMPTY_CELL

    def table(self, field: Mapping[str, Any], rows: list[dict[str, Any]]) -> Block:
        columns = list(field.get("columns") or [])
        if not rows:
            return Text((NO_ROWS,))
        if len(columns) <= GRID_COLUMNS:
            return Grid(
                ("Ref", *(str(c["label"]) for c in columns)),
                tuple(
                    (str(row.get("ref") or ""), *(self.cell(c, row.get(c["id"])) for c in columns))
                    for row in rows
                ),
            )
        register = bool(field.get("heatmap"))
        cards = []
        for row in rows:
            pairs = []
            assessment = self.matrix.assess(row) if register else None
            for column in columns:
                pairs.append((str(column["label"]), self.cell(column, row.get(column["id"]))))
                if assessment is not None:
                    pairs.extend(self._levels_after(column["id"], assessment))
            cards.append(Card(_row_label(field, row) or EMPTY_CELL, tuple(pairs)))
        return Cards(tuple(cards))

    def _levels_after(self, column_id: str, assessment: Assessment) -> list[tuple[str, str]]:
        """The computed level, printed right after the column that completes its rating."""
        if column_id == self.matrix.map_spec(INHERENT).severity_column:
            return [("Risk level before measures", risk_level_text(assessment, residual=False))]
        if column_id == self.matrix.map_spec(RESIDUAL).severity_column:
            return [("Risk level after measures", risk_level_text(assessment, residual=True))]
        return []

    def field(self, section_id: str, field: Mapping[str, Any]) -> FieldView:
        path = f"{section_id}.{field['id']}"
        value = self.content.get(section_id, {}).get(field["id"])
        kind = field["kind"]
        block: Block
        if kind == "richtext":
            block = Text(tuple(richtext_lines(value or [])))
        elif kind == "table":
            block = self.table(field, self.rows_of(path))
        elif kind == "multichoice":
            block = Text(tuple(self.values(field, value)))
        else:
            block = Text(tuple(self.values(field, value)))
        empty = block == Text(()) or block == Text((NO_ROWS,))
        if block == Text(()):
            block = Text((NOT_ANSWERED,))
        return FieldView(path, str(field["label"]), block, empty, bool(field.get("heatmap")))

    def computed(self, item: Mapping[str, Any]) -> FieldView | None:
        rows = register_rows(self.template.content, self.content)
        if item["compute"] == "max_residual_level":
            text = overall_residual_text(rows, self.matrix)
        elif item["compute"] == "residual_high_accepted":
            accepted = residual_high_accepted(rows, self.matrix)
            text = "Yes — consult the ICO before the processing starts" if accepted else "No"
        else:
            return None
        return FieldView(f"computed.{item['id']}", str(item["label"]), Text((text,)), False)


def risk_level_text(assessment: Assessment, *, residual: bool) -> str:
    """E.g. "High (likelihood Possible, severity Severe)", or "Not yet rated"."""
    rating = assessment.residual if residual else assessment.inherent
    if not residual and assessment.overridden and assessment.level is not None:
        return f"{assessment.level.label} (overridden; the ratings give " + (
            f"{rating.level.label})" if rating and rating.level else "not rated)"
        )
    if rating is None or rating.level is None:
        return "Not yet rated"
    return (
        f"{rating.level.label} (likelihood {rating.likelihood.label}, "
        f"severity {rating.severity.label})"
    )


def richtext_lines(nodes: list[Any]) -> list[str]:
    """Paragraphs and headings one a line, list items as "• item" or "1. item"."""
    lines: list[str] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        if kind in ("bulletList", "orderedList", "bullet_list", "ordered_list"):
            start = int((node.get("attrs") or {}).get("start") or 1)
            for n, item in enumerate(node.get("content") or []):
                marker = "•" if kind in ("bulletList", "bullet_list") else f"{start + n}."
                inner = richtext_lines(item.get("content") or []) if isinstance(item, dict) else []
                if inner:
                    lines.append(f"{marker} {inner[0]}")
                    lines.extend(f"  {line}" for line in inner[1:])
        elif "text" in node:
            lines.append(str(node["text"]))
        else:
            text = _inline(node.get("content") or [])
            if text.strip():
                lines.append(text)
    return lines


def _inline(nodes: list[Any]) -> str:
    parts = []
    for node in nodes:
        if isinstance(node, dict):
            if "text" in node:
                parts.append(str(node["text"]))
            elif node.get("type") in ("hardBreak", "hard_break"):
                parts.append("\n")
            else:
                parts.append(_inline(node.get("content") or []))
    return "".join(parts)


# -- whole records ---------------------------------------------------------------------------


def read_content(template: Template, content: Content) -> list[SectionView]:
    """Every section of the DPIA as it reads, in template order; the outcome section's
    computed values come first in it."""
    reader = _Reader(template, content)
    views = []
    for section in template.sections:
        computed = [reader.computed(item) for item in section.get("computed") or []]
        fields = [reader.field(section["id"], f) for f in section["fields"]]
        views.append(
            SectionView(
                str(section["id"]),
                str(section["title"]),
                (*(c for c in computed if c is not None), *fields),
            )
        )
    return views


def field_text(template: Template, content: Content, section_id: str, field_id: str) -> str:
    """One field as plain text (the comparisons): lines, grid rows, or card pairs."""
    reader = _Reader(template, content)
    spec = next(
        f
        for s in template.sections
        if s["id"] == section_id
        for f in s["fields"]
        if f["id"] == field_id
    )
    view = reader.field(section_id, spec)
    if view.empty:
        return ""
    return block_text(view.block)


def block_text(block: Block) -> str:
    if isinstance(block, Text):
        return "\n".join(block.lines)
    if isinstance(block, Grid):
        return "\n".join(
            "; ".join(f"{label}: {value}" for label, value in zip(block.header, row, strict=True))
            for row in block.rows
        )
    return "\n\n".join(
        "\n".join([card.title, *(f"{label}: {value}" for label, value in card.pairs)])
        for card in block.cards
    )


def target_label(template: Template, content: Content, target: str) -> str:
    """What a sign-off is of: "the whole DPIA", a section's title, or a row ("R1 …")."""
    if target == WHOLE:
        return "the whole DPIA"
    section_id, field_id, ref = split_target(target)
    section = next((s for s in template.sections if s["id"] == section_id), None)
    if section is None:
        return target
    if field_id is None:
        return str(section["title"])
    field = next((f for f in section["fields"] if f["id"] == field_id), None)
    row = find_row(content, section_id, field_id, ref)
    if field is None or not isinstance(row, dict):
        return f"{ref} (no longer in the DPIA)"
    return _row_label(field, row)


def register_summary(template: Template, content: Content) -> Grid | None:
    """One line per risk: what it is, its level before and after measures, who owns it."""
    reader = _Reader(template, content)
    path = register_path(template.content)
    if path is None:
        return None
    field = reader._fields[".".join(path)]
    specs = {c["id"]: c for c in field.get("columns") or []}
    before, after = reader.matrix.map_spec(INHERENT), reader.matrix.map_spec(RESIDUAL)
    named = [c for c in ("title", "harm_type") if c in specs]
    trailing = [c for c in ("owner", "status") if c in specs]
    header = (
        "Ref",
        *(str(specs[c]["label"]) for c in named),
        before.caption,
        after.caption,
        *(str(specs[c]["label"]) for c in trailing),
    )
    rows = []
    for row in register_rows(template.content, content):
        assessment = reader.matrix.assess(row)
        rows.append(
            (
                str(row.get("ref") or ""),
                *(reader.cell(specs[c], row.get(c)) for c in named),
                risk_level_text(assessment, residual=False),
                risk_level_text(assessment, residual=True),
                *(reader.cell(specs[c], row.get(c)) for c in trailing),
            )
        )
    return Grid(header, tuple(rows))


def column_cells(
    template: Template, content: Content, path: str, column_ids: tuple[str, ...]
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Chosen columns of a table as (labels, rows of readable cells): the action plan."""
    reader = _Reader(template, content)
    field = reader._fields[path]
    specs = {c["id"]: c for c in field.get("columns") or []}
    header = ("Ref", *(str(specs[c]["label"]) for c in column_ids))
    rows = [
        (str(row.get("ref") or ""), *(reader.cell(specs[c], row.get(c)) for c in column_ids))
        for row in reader.rows_of(path)
    ]
    return header, rows
