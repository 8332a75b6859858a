"""Who must sign a document for each party, and in which capacity (issue 16).

A project's agreement (the ISA) is signed by every party's own signatories: a line per
capacity (the DPO, the SIRO, the Caldicott Guardian where health data is involved). Which
capacities a document needs is its template's to say, in an optional top-level
``signatories`` entry::

    "signatories": {"capacities": ["dpo", "siro"],
                    "when": {"caldicott_guardian": "data.health_data"}}

``when`` names a yes/no field: the capacity is required once that field is Yes. A template
that says nothing needs no capacity, except an ISA, which falls back to the DPO and the SIRO
and the Caldicott Guardian when any ``health_data`` field is Yes. The exports print these
lines (server/services/reports.py); the sign-offs themselves are server/services/signoffs.py's.
"""

from __future__ import annotations

from typing import Any

from server.domain.content import Content
from server.domain.templates import Template

DPO = "dpo"
SIRO = "siro"
CALDICOTT_GUARDIAN = "caldicott_guardian"
REVIEWER = "reviewer"
CAPACITY_LABELS = {
    DPO: "Data protection officer",
    SIRO: "Senior information risk owner",
    CALDICOTT_GUARDIAN: "Caldicott Guardian",
    REVIEWER: "Reviewer for the reviewing body",
}
# The sign-off kind a reviewing body endorses with, and the party role it takes part in.
ENDORSEMENT = "endorsement"
REVIEWING_BODY = "reviewing_body"
REVIEWING_BODY_LABEL = "Reviewing body"
HEALTH_FIELD = "health_data"
_ISA_DEFAULT = {"capacities": [DPO, SIRO], "when": {CALDICOTT_GUARDIAN: f"*.{HEALTH_FIELD}"}}


def capacity_label(value: str) -> str:
    return CAPACITY_LABELS.get(value, value.replace("_", " ").capitalize())


def declares_signatories(template: Template) -> bool:
    return isinstance(template.content.get("signatories"), dict)


def required_capacities(template: Template, content: Content, *, is_isa: bool) -> list[str]:
    """The capacities every signing party needs, in the template's order."""
    declared: Any = template.content.get("signatories")
    if not isinstance(declared, dict):
        if not is_isa:
            return []
        declared = _ISA_DEFAULT
    required = [str(c) for c in declared.get("capacities", []) if isinstance(c, str)]
    for capacity, field in (declared.get("when") or {}).items():
        if capacity not in required and _is_yes(content, str(field)):
            required.append(str(capacity))
    return required


def _is_yes(content: Content, path: str) -> bool:
    section, _, name = path.partition(".")
    sections = content.values() if section == "*" else [content.get(section) or {}]
    return any(isinstance(s, dict) and s.get(name) is True for s in sections)
