"""How the record names signatures (issue 16): capacities and the endorsement.

Who must sign, for which party and in which capacity, is ``domain.parties``' rule (read from
the template's ``signatories``); this module only gives the exports' words for it.
"""

from __future__ import annotations

from server.domain import wording
from server.domain.parties import REVIEWER, REVIEWING_BODY
from server.domain.templates import Template

# The sign-off kind a reviewing body endorses with, and the party role it takes part in.
ENDORSEMENT = "endorsement"
REVIEWING_BODY_LABEL = "Reviewing body"
__all__ = ["ENDORSEMENT", "REVIEWING_BODY", "REVIEWING_BODY_LABEL", "capacity_label"]
_LABELS = {**wording.CAPACITIES, REVIEWER: "Reviewer for the reviewing body"}


def capacity_label(value: str) -> str:
    return _LABELS.get(value, value.replace("_", " ").capitalize())


def declares_signatories(template: Template) -> bool:
    return isinstance(template.content.get("signatories"), dict)
