"""The record of processing activities (RoPA, UK GDPR Article 30): its columns, how a DPIA's
answers fill them, and who may keep it.

The columns are those of the ICO's documentation template for controllers (Article 30(1)
(a)-(g), with the lawful basis and the special category or criminal offence condition the
ICO asks controllers to document beside them, and a link to the DPIA). Which answers fill
which column is data kept next to the template (``templates/ropa/<template>.json``): a
column lists its sources, each a column of the template's processing-activities table
(``{"column": …}``), a whole field (``{"field": "section.field"}``) or some rows of another
table (``{"rows": …, "show": column, "where": {column: [values]}}``). A source the template
lacks is skipped, so a template with fewer fields fills fewer columns, never fails.

One entry per row of the activities table; a DPIA without such rows (or a template without
the table) is one entry. Pure: template and content in, strings out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from server.domain.content import Content
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.readable import EMPTY_CELL, column_cells, field_text
from server.domain.templates import DEFAULT_TEMPLATE, Template

WHOLE_DPIA = "dpia"  # the activity key of a DPIA read as one activity


@dataclass(frozen=True, slots=True)
class Column:
    id: str
    label: str
    editable: bool = True  # a hand-added entry writes it (the others come from the org)


# In the ICO template's order. Labels are the words of its column headings.
COLUMNS: tuple[Column, ...] = (
    Column("reference", "Reference", editable=False),
    Column("activity", "Processing activity"),
    Column("controller", "Name and contact details of the controller", editable=False),
    Column("joint_controllers", "Joint controllers"),
    Column("dpo", "Data protection officer", editable=False),
    Column("purposes", "Purposes of the processing"),
    Column("individuals", "Categories of individuals"),
    Column("personal_data", "Categories of personal data"),
    Column("special_category", "Special category data (Article 9)"),
    Column("criminal_offence", "Criminal offence data (Article 10)"),
    Column("recipients", "Categories of recipients"),
    Column("transfers", "Transfers to third countries and safeguards"),
    Column("retention", "Retention schedule"),
    Column("security", "Technical and organisational security measures"),
    Column("lawful_basis", "Lawful basis (Article 6)"),
    Column("conditions", "Special category or criminal offence condition (Article 9 or 10)"),
    Column("dpia", "Link to the DPIA"),
)
COLUMN_IDS = tuple(c.id for c in COLUMNS)
EDITABLE = tuple(c.id for c in COLUMNS if c.editable)
MAX_VALUE = 4000


@dataclass(frozen=True, slots=True)
class Activity:
    """One processing activity of a DPIA, its columns as text ("" where unanswered)."""

    key: str  # the activities table row's id, or WHOLE_DPIA
    ref: str
    values: dict[str, str]


def load_mapping(template_id: str) -> dict[str, Any]:
    """The RoPA mapping of a template; the default template's for one without its own."""
    folder = resources.files("server.domain").joinpath("templates", "ropa")
    for name in (template_id, DEFAULT_TEMPLATE):
        if not name.replace("-", "").isalnum():
            continue
        path = folder.joinpath(f"{name}.json")
        if path.is_file():
            mapping: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return mapping
    return {"columns": {}}


def _fields(template: Template) -> dict[str, dict[str, Any]]:
    return {f"{s['id']}.{f['id']}": f for s in template.sections for f in s["fields"]}


def _clean(text: str) -> str:
    return "" if text.strip() in ("", EMPTY_CELL) else text.strip()


def _rows(content: Content, path: str) -> list[dict[str, Any]]:
    section, _, field = path.partition(".")
    rows = content.get(section, {}).get(field)
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _rows_text(
    template: Template, content: Content, fields: Mapping[str, Any], source: Mapping[str, Any]
) -> str:
    path, show = str(source.get("rows", "")), str(source.get("show", ""))
    table = fields.get(path)
    if table is None or table.get("kind") != "table":
        return ""
    columns = {c["id"] for c in table.get("columns") or []}
    if show not in columns:
        return ""
    where = {k: v for k, v in (source.get("where") or {}).items() if k in columns}
    _header, cells = column_cells(template, content, path, (show,))
    chosen = [
        _clean(cell[1])
        for raw, cell in zip(_rows(content, path), cells, strict=True)
        if all(raw.get(k) in allowed for k, allowed in where.items())
    ]
    return "\n".join(c for c in chosen if c)


def activities(template: Template, content: Content, mapping: Mapping[str, Any]) -> list[Activity]:
    """Each processing activity of the DPIA with the mapped columns' text."""
    fields = _fields(template)
    table_path = str(mapping.get("activities", ""))
    table = fields.get(table_path)
    columns = mapping.get("columns") or {}
    row_columns: tuple[str, ...] = ()
    rows: list[dict[str, Any]] = []
    cells: list[tuple[str, ...]] = []
    if table is not None and table.get("kind") == "table":
        row_columns = tuple(c["id"] for c in table.get("columns") or [])
        rows = _rows(content, table_path)
        _header, cells = column_cells(template, content, table_path, row_columns)

    shared: dict[str, str] = {}
    for column, sources in columns.items():
        parts = []
        for source in sources:
            if "field" in source and source["field"] in fields:
                section, _, field = str(source["field"]).partition(".")
                parts.append(_clean(field_text(template, content, section, field)))
            elif "rows" in source:
                parts.append(_rows_text(template, content, fields, source))
        shared[column] = "\n".join(p for p in parts if p)

    def row_values(raw: Mapping[str, Any] | None, readable: tuple[str, ...]) -> dict[str, str]:
        values = {}
        for column in EDITABLE:
            parts = []
            for source in columns.get(column) or []:
                name = source.get("column")
                if name is None or raw is None or name not in row_columns:
                    continue
                if raw.get(name) in (source.get("skip") or []):
                    continue
                parts.append(_clean(readable[1 + row_columns.index(name)]))
            if shared.get(column):
                parts.append(shared[column])
            values[column] = "\n".join(p for p in parts if p)
        return values

    if not rows:
        return [Activity(WHOLE_DPIA, "", row_values(None, ()))]
    found = []
    for number, (raw, readable) in enumerate(zip(rows, cells, strict=True), 1):
        ref = str(raw.get("ref") or f"#{number}")
        values = row_values(raw, readable)
        described = next((_clean(c) for c in readable[1:] if _clean(c)), "")
        values["activity"] = described.split("\n")[0][:200]
        found.append(Activity(str(raw.get("id") or ref), ref, values))
    return found


def fingerprint(values: Mapping[str, str]) -> str:
    """What a confirmation binds: the entry's columns drawn from the DPIA."""
    data = {c: values.get(c, "") for c in EDITABLE}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_entry(form: Mapping[str, str]) -> dict[str, str]:
    """A hand-added entry's columns, checked: an activity is required, lengths bounded."""
    values = {}
    for column in EDITABLE:
        text = str(form.get(column, "")).replace("\r\n", "\n").strip()
        if len(text) > MAX_VALUE:
            label = next(c.label for c in COLUMNS if c.id == column)
            raise InvalidInput(f'Shorten "{label}" to {MAX_VALUE} characters or fewer')
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
            raise InvalidInput("The entry contains control characters")
        values[column] = text
    if not values["activity"]:
        raise InvalidInput("Name the processing activity")
    return values


def keeper_policy(*, administrator: bool, dpo: bool) -> None:
    """Who reads and keeps an organisation's RoPA: its administrators and its DPOs (a
    member who signs for it as DPO). Anyone else, of it or not, is refused."""
    if not (administrator or dpo):
        raise AccessDenied(
            "Only the organisation's administrators and its data protection officers "
            "keep its record of processing activities"
        )
