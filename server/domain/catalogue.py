"""The risk catalogue: which of a template's common risks a DPIA's answers make relevant,
what the authors decided about each, and the rows an accepted one adds.

A template's ``risk_catalogue`` (docs/document-model.md, "Risk catalogue") lists risks with
the conditions that make each relevant, as data over the template's field ids and option
values (``check_template`` checks them on load). Nothing here writes: a *proposal* is only
a suggestion until a person accepts it (the risk and its measures become rows of the
register and the plan) or dismisses it with a reason.

The rules (decision "proposals are re-offered only on new grounds"):

- A risk is relevant when any of its ``when`` alternatives holds; an alternative is one
  condition, or ``{"all": [...]}``. A condition on a table's column holds when any row's
  value does. Each condition that holds is a *ground*, with a stable key (a table's ground
  names its row: ``processing.operations[P2].special_category``).
- An accepted risk is never proposed again (removing its row later is a decision too).
- A dismissed risk is proposed again only when a ground appears that was not among the
  grounds it was dismissed on: the answers changed in a way that makes it relevant for a
  reason nobody has weighed. Grounds that merely come back do not re-open it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.domain import wording
from server.domain.content import plain_text
from server.domain.errors import Conflict, InvalidInput
from server.domain.templates import Template, register_of, template_fields

PROPOSED = "proposed"
ACCEPTED = "accepted"
DISMISSED = "dismissed"
ACCEPTED_EVENT = "risk_proposal_accepted"
DISMISSED_EVENT = "risk_proposal_dismissed"
REASON_MAX = 2000


@dataclass(frozen=True, slots=True)
class SuggestedMeasure:
    title: str
    description: str
    type: str | None


@dataclass(frozen=True, slots=True)
class CatalogueRisk:
    id: str
    title: str
    description: str
    likelihood: str
    severity: str
    harm_type: str | None
    measures: tuple[SuggestedMeasure, ...]
    when: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Ground:
    """One condition that holds: ``key`` is stable, ``text`` is what a person reads."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    risk_id: str
    outcome: str  # accepted | dismissed
    grounds: frozenset[str]
    actor: str
    at: datetime
    reason: str = ""
    ref: str = ""
    round: int = 0  # how many decisions on this risk came before it


@dataclass(frozen=True, slots=True)
class Proposal:
    risk: CatalogueRisk
    state: str  # proposed | accepted | dismissed
    grounds: tuple[Ground, ...]
    decision: Decision | None = None
    new_grounds: tuple[Ground, ...] = field(default_factory=tuple)

    @property
    def again(self) -> bool:
        """Proposed again after a dismissal, because of new grounds."""
        return self.state == PROPOSED and self.decision is not None


def catalogue(template: Template) -> list[CatalogueRisk]:
    """The template's catalogue (checked on load), or none."""
    return [
        CatalogueRisk(
            id=str(entry["id"]),
            title=str(entry["title"]),
            description=str(entry["description"]),
            likelihood=str(entry["likelihood"]),
            severity=str(entry["severity"]),
            harm_type=entry.get("harm_type"),
            measures=tuple(
                SuggestedMeasure(
                    str(m["title"]), str(m.get("description") or ""), m.get("type") or None
                )
                for m in entry["measures"]
            ),
            when=tuple(entry["when"]),
        )
        for entry in template.content.get("risk_catalogue") or []
    ]


def find_risk(template: Template, risk_id: str) -> CatalogueRisk:
    for risk in catalogue(template):
        if risk.id == risk_id:
            return risk
    raise InvalidInput(f"This template's catalogue has no risk {risk_id[:60]!r}")


# -- conditions ------------------------------------------------------------------------------


def grounds(template: Template, risk: CatalogueRisk, content: Mapping[str, Any]) -> list[Ground]:
    """The conditions of ``risk`` that hold in ``content`` (canonical), as grounds; empty
    when the risk is not relevant."""
    fields = template_fields(template.content)
    found: dict[str, Ground] = {}
    for alternative in risk.when:
        tests = alternative.get("all", [alternative])
        held = [_holds(template, fields, test, content) for test in tests]
        if all(held):
            for ground in (g for found_here in held for g in found_here):
                found.setdefault(ground.key, ground)
    return list(found.values())


def _holds(
    template: Template,
    fields: Mapping[str, Mapping[str, Any]],
    test: Mapping[str, Any],
    content: Mapping[str, Any],
) -> list[Ground]:
    path = str(test["field"])
    parts = path.split(".")
    spec = fields[path]
    if len(parts) == 2:
        value = content.get(parts[0], {}).get(parts[1])
        return [g for g in [_ground(path, _label(template, path), spec, test, value)] if g]
    table_path = ".".join(parts[:2])
    rows = content.get(parts[0], {}).get(parts[1])
    table_label = _label(template, table_path)
    found = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        ref = str(row.get("ref") or "?")
        key = f"{table_path}[{ref}].{parts[2]}"
        name = f"{table_label} {ref} — {spec['label']}"
        ground = _ground(key, name, spec, test, row.get(parts[2]))
        if ground:
            found.append(ground)
    return found


def _ground(
    key: str, name: str, spec: Mapping[str, Any], test: Mapping[str, Any], value: Any
) -> Ground | None:
    if "answered" in test:
        if _empty(value):
            return None
        return Ground(f"{key} answered", f"{name} is answered")
    wanted = test.get("includes", test.get("is"))
    if "includes" in test:
        if not isinstance(value, list) or wanted not in value:
            return None
    elif value != wanted:
        return None
    if isinstance(wanted, bool):
        shown = "yes" if wanted else "no"
    else:
        shown = next(
            (o["label"] for o in spec.get("options") or [] if o["value"] == wanted), str(wanted)
        )
    return Ground(f"{key}={wanted}", f"{name}: {shown}")


def _label(template: Template, path: str) -> str:
    section_id, _, field_id = path.partition(".")
    for section in template.sections:
        if section["id"] == section_id:
            title = section.get("short_title") or section["title"]
            for spec in section["fields"]:
                if spec["id"] == field_id:
                    return f"{title}: {spec['label']}"
    return path


def _empty(value: Any) -> bool:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return plain_text(value).strip() == ""  # rich text with no words in it
    return value in (None, "", [], {}, False)


# -- proposals -------------------------------------------------------------------------------


def proposals(
    template: Template, content: Mapping[str, Any], decisions: Iterable[Decision]
) -> list[Proposal]:
    """Every catalogue risk that is relevant now or was decided, in catalogue order:
    proposed (undecided, or dismissed but relevant again on new grounds), accepted, or
    dismissed. A risk neither relevant nor decided is not listed."""
    latest: dict[str, Decision] = {}
    for decision in decisions:
        latest[decision.risk_id] = decision  # oldest first: the last one stands
    found = []
    for risk in catalogue(template):
        now = tuple(grounds(template, risk, content))
        decided = latest.get(risk.id)
        if decided is None:
            if now:
                found.append(Proposal(risk, PROPOSED, now))
            continue
        if decided.outcome == ACCEPTED:
            found.append(Proposal(risk, ACCEPTED, now, decided))
            continue
        new = tuple(g for g in now if g.key not in decided.grounds)
        state = PROPOSED if new else DISMISSED
        found.append(Proposal(risk, state, now, decided, new))
    return found


def pending(found: Sequence[Proposal]) -> list[Proposal]:
    return [p for p in found if p.state == PROPOSED]


def proposal_for(found: Sequence[Proposal], risk_id: str) -> Proposal:
    """The proposal a person acts on: it must be proposed now (not decided, not irrelevant)."""
    for proposal in found:
        if proposal.risk.id == risk_id:
            if proposal.state != PROPOSED:
                by = proposal.decision.actor if proposal.decision is not None else ""
                raise Conflict(
                    wording.risk_already_decided(proposal.risk.title, proposal.state, by)
                )
            return proposal
    raise InvalidInput("That risk is not proposed for this DPIA's answers")


def next_round(decisions: Iterable[Decision], risk_id: str) -> int:
    """The round a new decision on ``risk_id`` takes: how many came before it. Two people
    deciding the same proposal at once both take the same round, and only one can store it."""
    return sum(1 for decision in decisions if decision.risk_id == risk_id)


def check_reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InvalidInput("Say why this risk does not apply: a dismissal needs a reason")
    if len(cleaned) > REASON_MAX:
        raise InvalidInput(f"Keep the reason under {REASON_MAX} characters")
    return cleaned


# -- accepting: the rows an accepted risk adds -------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewRows:
    register: str  # section.field of the register
    risk: dict[str, Any]
    plan: str | None  # section.field of the measures table, if the register links one
    measures: tuple[dict[str, Any], ...]


def next_ref(rows: Iterable[Mapping[str, Any]], prefix: str) -> str:
    """One more than the largest ``<prefix><n>``, as the editor numbers rows."""
    largest = 0
    for row in rows:
        ref = row.get("ref")
        if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :].isdigit():
            largest = max(largest, int(ref[len(prefix) :]))
    return f"{prefix}{largest + 1}"


def accepted_rows(template: Template, risk: CatalogueRisk, content: Mapping[str, Any]) -> NewRows:
    """The register row of an accepted risk (open, rated before measures from the
    catalogue's defaults) and a planned row per suggested measure, linked both ways."""
    found = register_of(template.content)
    if found is None:  # check_template refuses a catalogue without a register
        raise InvalidInput("This template has no risk register")
    register_path, register = found
    columns = {c["id"]: c for c in register["columns"]}
    section, _, name = register_path.partition(".")
    current = content.get(section, {}).get(name) or []
    risk_id = secrets.token_hex(12)
    row: dict[str, Any] = {"id": risk_id, "ref": next_ref(current, register["row_prefix"])}
    for column, value in (
        ("title", risk.title),
        ("source", risk.description),
        ("harm_type", risk.harm_type),
        ("likelihood", risk.likelihood),
        ("severity", risk.severity),
        ("status", "open"),
    ):
        if column in columns and value is not None:
            row[column] = value
    plan_path = columns.get("measures", {}).get("options_from")
    measures: list[dict[str, Any]] = []
    if plan_path:
        plan_spec = template_fields(template.content)[plan_path]
        plan_columns = {c["id"] for c in plan_spec["columns"]}
        plan_section, _, plan_name = plan_path.partition(".")
        plan_rows = list(content.get(plan_section, {}).get(plan_name) or [])
        for suggested in risk.measures:
            measure: dict[str, Any] = {
                "id": secrets.token_hex(12),
                "ref": next_ref(plan_rows, plan_spec["row_prefix"]),
            }
            values: tuple[tuple[str, Any], ...] = (
                ("title", suggested.title),
                ("description", suggested.description or None),
                ("type", suggested.type),
                ("status", "planned"),
                ("risks", [risk_id]),
            )
            for column, value in values:
                if column in plan_columns and value is not None:
                    measure[column] = value
            plan_rows.append(measure)
            measures.append(measure)
        row["measures"] = [m["id"] for m in measures]
    elif "source" in columns:
        suggested_text = "; ".join(m.title for m in risk.measures)
        row["source"] = f"{risk.description}\n\nSuggested measures: {suggested_text}"
    return NewRows(register_path, row, plan_path if measures else None, tuple(measures))
