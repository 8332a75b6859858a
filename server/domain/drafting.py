"""Drafting one step's document from the earlier ones (issue 16): pure functions on canonical
content (``domain.content``), no I/O.

- ``prefill_dpia``: what a new DPIA takes from the idea, the pre-screening and the
  feasibility (``DPIA_PREFILL``). ``fill_empty`` keeps only the fields still empty in a
  document, so a later "fill empty fields from earlier steps" never overwrites anyone.
- ``draft_isa``: the information sharing agreement drafted from the DPIA (``ISA_FROM_DPIA``)
  and the project's parties. Every drafted field names its DPIA source fields, so
  ``source_fingerprint`` can tell later whether the source changed.

A source path is ``section.field`` (the whole field) or ``section.table.column`` (one
column of every row of a table, with each row's ref), so a link follows only what it was
drafted from. docs/projects.md has both mappings as tables; a unit test keeps them equal.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from server.domain.content import Content, canonical, is_empty, plain_text
from server.domain.templates import Template

Nodes = list[dict[str, Any]]
NewId = Callable[[], str]

IDEA = "idea"
PRESCREENING = "prescreening"
FEASIBILITY = "feasibility"


@dataclass(frozen=True, slots=True)
class Mapping:
    """One drafted field: where it comes from and how (the words of docs/projects.md)."""

    target: str
    sources: tuple[str, ...]
    how: str


def _id() -> str:
    return secrets.token_hex(12)


# -- reading canonical content -----------------------------------------------------------


def _value(content: Content | None, path: str) -> Any:
    if content is None:
        return None
    section, _, field = path.partition(".")
    return content.get(section, {}).get(field)


def _rows(content: Content | None, path: str) -> list[dict[str, Any]]:
    value = _value(content, path)
    return [row for row in value or [] if isinstance(row, dict)]


def _nodes(content: Content | None, path: str) -> Nodes:
    value = _value(content, path)
    return list(value) if isinstance(value, list) else []


def paragraph(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"text": text}] if text else []}


def _paragraphs(lines: Iterable[str]) -> Nodes:
    return [paragraph(line) for line in lines if line.strip()]


def _option_labels(template: Template, path: str) -> dict[str, str]:
    """Option value → label of a field (``s.f``) or a table column (``s.f.c``)."""
    section_id, field_id, *column = path.split(".")
    for section in template.sections:
        if section["id"] != section_id:
            continue
        for field in section["fields"]:
            if field["id"] != field_id:
                continue
            spec = field
            if column:
                spec = next(c for c in field.get("columns", []) if c["id"] == column[0])
            return {str(o["value"]): str(o["label"]) for o in spec.get("options") or []}
    return {}


def _distinct(values: Iterable[Any]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if isinstance(value, str) and value and value not in seen:
            seen.append(value)
    return seen


def _row_line(row: dict[str, Any], *parts: Any) -> str:
    text = ": ".join(str(p) for p in parts if not is_empty(p))
    ref = str(row.get("ref") or "")
    return f"{ref} {text}".strip() if text else ""


# -- step 4: the DPIA from steps 1-3 -------------------------------------------------------

DPIA_PREFILL: tuple[Mapping, ...] = (
    Mapping("need.aims", ("idea:outcome.outcome", "idea:outcome.people"), "both texts, in turn"),
    Mapping(
        "need.processing_type",
        ("idea:action.actors", "idea:action.decision"),
        "both texts, in turn",
    ),
    Mapping("processing.purposes", ("idea:insight.insight",), "copied"),
    Mapping("screening.triggers", ("prescreening:screening.triggers",), "the same criteria"),
    Mapping("screening.outcome", ("prescreening:screening.dpia_needed",), "the same answer"),
    Mapping("screening.rationale", ("prescreening:screening.rationale",), "copied"),
    Mapping(
        "processing.context",
        (
            "prescreening:legal.gateways",
            "prescreening:legal.other_gateways",
            "prescreening:risks.subject_reaction",
        ),
        "a paragraph naming the gateways ticked, then both texts",
    ),
    Mapping(
        "processing.children_vulnerable",
        ("prescreening:screening.triggers",),
        "yes when vulnerable people or targeting children is ticked (otherwise left empty)",
    ),
    Mapping(
        "processing.novel_technology",
        ("prescreening:screening.triggers",),
        "yes when innovative technology is ticked (otherwise left empty)",
    ),
    Mapping(
        "processing.operations",
        (
            "feasibility:data.datasets",
            "feasibility:sharing.frequency",
            "prescreening:legal.gateways",
            "idea:datasets.datasets",
        ),
        "one operation per feasibility dataset that is personal data (or, without any, per "
        "step 1 dataset): description, data categories (the fields needed), special "
        "category, source (who holds it), frequency; the lawful basis when exactly one "
        "UK GDPR Article 6 basis was ticked at pre-screening",
    ),
    Mapping(
        "necessity.minimisation",
        ("prescreening:ethics.minimising_negative_impact", "feasibility:data.datasets"),
        "the text, then which datasets can be anonymised or pseudonymised",
    ),
    Mapping(
        "necessity.transparency",
        ("prescreening:ethics.communicating_purpose", "prescreening:ethics.openness"),
        "both texts, in turn",
    ),
    Mapping(
        "consultation.not_consulted_reason",
        ("prescreening:ethics.engaging_with_people",),
        "copied (the plan to involve people, to be turned into the consultation record)",
    ),
)

_ARTICLE6 = {
    "uk-gdpr-6-1-a": "consent",
    "uk-gdpr-6-1-b": "contract",
    "uk-gdpr-6-1-c": "legal-obligation",
    "uk-gdpr-6-1-d": "vital-interests",
    "uk-gdpr-6-1-e": "public-task",
    "uk-gdpr-6-1-f": "legitimate-interests",
}


def prefill_dpia(
    earlier: dict[str, Content],
    *,
    templates: dict[str, Template],
    new_id: NewId = _id,
) -> Content:
    """The DPIA's fields drafted from the idea, pre-screening and feasibility (``earlier``:
    kind → canonical content; any may be missing). Only fields with something to say."""
    idea = earlier.get(IDEA)
    screen = earlier.get(PRESCREENING)
    feasibility = earlier.get(FEASIBILITY)
    out: dict[str, dict[str, Any]] = {}

    def put(path: str, value: Any) -> None:
        if not is_empty(value):
            section, _, field = path.partition(".")
            out.setdefault(section, {})[field] = value

    put("need.aims", _nodes(idea, "outcome.outcome") + _nodes(idea, "outcome.people"))
    put(
        "need.processing_type",
        _nodes(idea, "action.actors") + _nodes(idea, "action.decision"),
    )
    put("processing.purposes", _nodes(idea, "insight.insight"))
    triggers = _value(screen, "screening.triggers")
    triggers = list(triggers) if isinstance(triggers, list) else []
    put("screening.triggers", triggers)
    put("screening.outcome", _value(screen, "screening.dpia_needed"))
    put("screening.rationale", _nodes(screen, "screening.rationale"))
    gateways = _value(screen, "legal.gateways")
    gateways = [g for g in gateways or [] if isinstance(g, str)]
    context: Nodes = []
    if gateways and PRESCREENING in templates:
        labels = _option_labels(templates[PRESCREENING], "legal.gateways")
        context.append(
            paragraph(
                "Legal gateways identified at pre-screening: "
                + "; ".join(labels.get(g, g) for g in gateways)
                + "."
            )
        )
    context += _nodes(screen, "legal.other_gateways") + _nodes(screen, "risks.subject_reaction")
    put("processing.context", context)
    if {"vulnerable-subjects", "targeting-children"} & set(triggers):
        put("processing.children_vulnerable", True)
    if "innovative-technology" in triggers:
        put("processing.novel_technology", True)
    bases = _distinct(_ARTICLE6.get(g) for g in gateways)
    put(
        "processing.operations",
        _operations(idea, feasibility, templates, bases[0] if len(bases) == 1 else None, new_id),
    )
    minimisation = _nodes(screen, "ethics.minimising_negative_impact")
    deidentify = [
        _row_line(row, row.get("dataset"), _DEIDENTIFY.get(str(row.get("deidentify")), ""))
        for row in _rows(feasibility, "data.datasets")
        if row.get("deidentify") in ("anonymised", "pseudonymised")
    ]
    if deidentify:
        minimisation += [paragraph("Datasets that can be anonymised or pseudonymised:")]
        minimisation += _paragraphs(deidentify)
    put("necessity.minimisation", minimisation)
    put(
        "necessity.transparency",
        _nodes(screen, "ethics.communicating_purpose") + _nodes(screen, "ethics.openness"),
    )
    put("consultation.not_consulted_reason", _nodes(screen, "ethics.engaging_with_people"))
    return out


_DEIDENTIFY = {"anonymised": "can be anonymised", "pseudonymised": "can be pseudonymised"}


def _operations(
    idea: Content | None,
    feasibility: Content | None,
    templates: dict[str, Template],
    basis: str | None,
    new_id: NewId,
) -> list[dict[str, Any]]:
    frequency = _value(feasibility, "sharing.frequency")
    if isinstance(frequency, str) and FEASIBILITY in templates:
        frequency = _option_labels(templates[FEASIBILITY], "sharing.frequency").get(
            frequency, frequency
        )
    rows: list[dict[str, Any]] = []
    for dataset in _rows(feasibility, "data.datasets"):
        if dataset.get("personal") is False:
            continue  # no personal data: not a processing operation of the DPIA
        rows.append(
            {
                "description": f"Share {dataset.get('dataset') or 'the dataset'}",
                "data_categories": dataset.get("fields") or "",
                "special_category": bool(dataset.get("special_category")),
                "source": dataset.get("held_by") or "",
                "frequency": frequency if isinstance(frequency, str) else "",
            }
        )
    if not rows:
        for dataset in _rows(idea, "datasets.datasets"):
            if dataset.get("personal") is False:
                continue
            rows.append(
                {
                    "description": f"Share {dataset.get('name') or 'the dataset'}",
                    "source": dataset.get("holder") or "",
                    "purpose": dataset.get("purpose") or "",
                }
            )
    for number, row in enumerate(rows, 1):
        row["id"] = new_id()
        row["ref"] = f"P{number}"
        if basis is not None:
            row["lawful_basis"] = basis
    return rows


def fill_empty(current: Content, drafted: Content) -> Content:
    """The drafted fields whose field in ``current`` is still empty: what "fill empty
    fields from earlier steps" writes, so nobody's answer is ever replaced."""
    out: dict[str, dict[str, Any]] = {}
    for section, fields in drafted.items():
        for field, value in fields.items():
            if is_empty(current.get(section, {}).get(field)) and not is_empty(value):
                out.setdefault(section, {})[field] = value
    return out


# -- step 5: the ISA from the DPIA ---------------------------------------------------------

ISA_FROM_DPIA: tuple[Mapping, ...] = (
    Mapping("purpose.purpose", ("need.aims", "processing.purposes"), "both texts, in turn"),
    Mapping("purpose.benefits", ("necessity.achieves_purpose",), "copied"),
    Mapping(
        "legal.article6",
        ("processing.operations.lawful_basis",),
        "every lawful basis of the processing operations, once each",
    ),
    Mapping(
        "legal.conditions",
        ("processing.operations.condition",),
        "every Article 9 or 10 condition of the processing operations, once each "
        "(not applicable left out)",
    ),
    Mapping(
        "data.items",
        (
            "processing.operations.data_categories",
            "processing.operations.data_subjects",
            "processing.operations.special_category",
            "processing.operations.criminal_offence",
            "processing.operations.source",
            "processing.operations.recipients",
        ),
        "one row per processing operation: data categories, data subjects, the two flags, "
        "shared by (source), shared with (recipients)",
    ),
    Mapping(
        "data.special_categories",
        ("processing.operations.special_category", "processing.operations.criminal_offence"),
        "yes when any operation has special category or criminal offence data, else no",
    ),
    Mapping(
        "data.health_data",
        ("processing.operations.condition",),
        "yes when any operation relies on 9(2)(h) health or social care or 9(2)(i) public "
        "health (otherwise left for the parties to answer)",
    ),
    Mapping("data.minimisation", ("necessity.minimisation",), "copied"),
    Mapping(
        "transfer.frequency",
        ("processing.operations.frequency",),
        "a paragraph per operation: its ref and its frequency",
    ),
    Mapping("transfer.method", ("processing.nature",), "copied"),
    Mapping(
        "security.measures",
        (
            "measures.plan.title",
            "measures.plan.description",
            "measures.plan.type",
            "measures.plan.status",
        ),
        "a paragraph per technical or organisational measure: ref, title, description, "
        "type and status",
    ),
    Mapping(
        "retention.retention",
        ("processing.operations.description", "processing.operations.retention"),
        "a paragraph per operation: its ref, description and retention period",
    ),
    Mapping("rights.rights", ("necessity.rights",), "copied"),
    Mapping("rights.transparency", ("necessity.transparency",), "copied"),
    Mapping("review.review_date", ("review.next_review",), "the same date"),
)

_HEALTH = {"9-2-h-health-social-care", "9-2-i-public-health"}


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    role: str


def source_value(content: Content, path: str) -> Any:
    """What a source path reads: a field's canonical value, or one column of a table's rows
    (with each row's ref, so a row added or removed counts as a change)."""
    parts = path.split(".")
    if len(parts) == 2:
        return _value(content, path)
    table = _rows(content, f"{parts[0]}.{parts[1]}")
    return [{"ref": row.get("ref"), parts[2]: row.get(parts[2])} for row in table]


def source_fingerprint(content: Content, sources: Sequence[str]) -> str:
    """SHA-256 of what ``sources`` read now: equal to the stored one iff nothing changed."""
    value = {path: source_value(content, path) for path in sources}
    return hashlib.sha256(canonical(value)).hexdigest()


def source_text(template: Template, content: Content, sources: Sequence[str]) -> str:
    """The sources as plain text, one labelled block each (the diff shown on a change)."""
    blocks = []
    for path in sources:
        parts = path.split(".")
        label = _label(template, path)
        if len(parts) == 2:
            value = _value(content, path)
            labels = _option_labels(template, path)
            if isinstance(value, str | list) and labels:
                values = value if isinstance(value, list) else [value]
                text = ", ".join(labels.get(str(v), str(v)) for v in values)
            else:
                text = plain_text(value)
        else:
            labels = _option_labels(template, path)
            text = "\n".join(
                f"{row['ref']}: {labels.get(str(row[parts[2]]), plain_text(row[parts[2]]))}"
                for row in source_value(content, path)
                if not is_empty(row[parts[2]])
            )
        blocks.append(f"{label}\n{text}".rstrip())
    return "\n\n".join(blocks)


def _label(template: Template, path: str) -> str:
    section_id, field_id, *column = path.split(".")
    for section in template.sections:
        if section["id"] == section_id:
            for field in section["fields"]:
                if field["id"] == field_id:
                    if column:
                        spec = next(c for c in field["columns"] if c["id"] == column[0])
                        return f"{field['label']}: {spec['label']}"
                    return str(field["label"])
    return path


def draft_isa(
    dpia: Content,
    parties: Sequence[Party],
    *,
    dpia_template: Template,
    new_id: NewId = _id,
) -> tuple[Content, list[Mapping]]:
    """The ISA's fields drafted from the DPIA and the project's parties, and the mappings
    actually used (a field with nothing to draft from is left empty and not linked)."""
    out: dict[str, dict[str, Any]] = {}
    used: list[Mapping] = []
    by_target = {m.target: m for m in ISA_FROM_DPIA}

    def put(path: str, value: Any) -> None:
        if is_empty(value) and value is not False:
            return
        section, _, field = path.partition(".")
        out.setdefault(section, {})[field] = value
        if path in by_target:
            used.append(by_target[path])

    put(
        "parties.parties",
        [
            {"id": new_id(), "ref": f"O{n}", "organisation": p.name, "role": p.role}
            for n, p in enumerate((p for p in parties if p.role != "reviewer"), 1)
        ],
    )
    put("purpose.purpose", _nodes(dpia, "need.aims") + _nodes(dpia, "processing.purposes"))
    put("purpose.benefits", _nodes(dpia, "necessity.achieves_purpose"))
    operations = _rows(dpia, "processing.operations")
    put("legal.article6", _distinct(row.get("lawful_basis") for row in operations))
    put(
        "legal.conditions",
        [c for c in _distinct(row.get("condition") for row in operations) if c != "not-applicable"],
    )
    put(
        "data.items",
        [
            {
                "id": new_id(),
                "ref": f"I{n}",
                "item": row.get("data_categories") or "",
                "subjects": row.get("data_subjects") or "",
                "special_category": bool(row.get("special_category")),
                "criminal_offence": bool(row.get("criminal_offence")),
                "from": row.get("source") or "",
                "to": row.get("recipients") or "",
            }
            for n, row in enumerate(operations, 1)
        ],
    )
    if operations:
        put(
            "data.special_categories",
            any(row.get("special_category") or row.get("criminal_offence") for row in operations),
        )
    if any(row.get("condition") in _HEALTH for row in operations):
        put("data.health_data", True)
    put("data.minimisation", _nodes(dpia, "necessity.minimisation"))
    put(
        "transfer.frequency",
        _paragraphs(
            _row_line(row, row.get("description"), row.get("frequency"))
            for row in operations
            if row.get("frequency")
        ),
    )
    put("transfer.method", _nodes(dpia, "processing.nature"))
    types = _option_labels(dpia_template, "measures.plan.type")
    statuses = _option_labels(dpia_template, "measures.plan.status")
    put(
        "security.measures",
        _paragraphs(
            _row_line(
                row,
                row.get("title"),
                row.get("description"),
                f"{types.get(str(row.get('type')), '')}, "
                f"{statuses.get(str(row.get('status')), 'status not set').lower()}",
            )
            for row in _rows(dpia, "measures.plan")
            if row.get("type") in ("technical", "organisational")
        ),
    )
    put(
        "retention.retention",
        _paragraphs(
            _row_line(row, row.get("description"), row.get("retention"))
            for row in operations
            if row.get("retention")
        ),
    )
    put("rights.rights", _nodes(dpia, "necessity.rights"))
    put("rights.transparency", _nodes(dpia, "necessity.transparency"))
    put("review.review_date", _value(dpia, "review.next_review"))
    return out, used
