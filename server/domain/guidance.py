"""What the workflow offers each person, and what to check before sending a DPIA for review.

The offers are read from the policies that decide the actions (``domain.workflow``): a
section step is offered when ``section_step_policy`` would take it, a DPIA step when
``next_steps`` lists it, a sign-off when ``SIGNERS`` holds the role. Nothing here decides
who may do what; it only orders what the policies allow so that the likely step comes first
(a DPO reviewing sees "Mark as reviewed" before "Request changes"; an author sees "Send
for review"), and it lists what is still empty or stale before "Send for review".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from server.domain.access import Role
from server.domain.content import Content
from server.domain.dpias import DpiaStatus
from server.domain.errors import DomainError
from server.domain.templates import Template
from server.domain.workflow import (
    REVIEWED_BEFORE_ADVICE,
    SIGNERS,
    STEP7_KINDS,
    Decision,
    SectionAction,
    SectionState,
    SignOffKind,
    Transition,
    next_steps,
    section_step_policy,
    signable,
)

# The order steps are offered in when a role may take several: forward before back.
_SECTION_ORDER = (
    SectionAction.SUBMIT,
    SectionAction.REVIEW,
    SectionAction.REQUEST_CHANGES,
    SectionAction.REOPEN,
)
# "Send for review": the one move that asks the authors to check their work first.
CONFIRMED_MOVES = frozenset({DpiaStatus.IN_REVIEW})


def section_steps(
    section: str, states: Mapping[str, SectionState], role: Role, status: DpiaStatus
) -> list[SectionAction]:
    """The steps ``role`` may take on ``section`` now, likely first: exactly those the
    section policy would take (reasons aside, which the form asks for)."""
    offered = []
    for action in _SECTION_ORDER:
        try:
            section_step_policy(action.value, section, states, role, status, "reasons")
        except DomainError:
            continue
        offered.append(action)
    return offered


def dpia_steps(status: DpiaStatus, role: Role) -> list[Transition]:
    """The moves ``role`` may make on a DPIA that is ``status``, likely first: a move that
    needs reasons is a step back or an exception (send back, reject, abandon), so the
    plain step forward leads."""
    return sorted(next_steps(status, role), key=lambda t: t.needs_reasons)


def may_sign(role: Role) -> bool:
    return role in SIGNERS


def signing_kinds(role: Role, status: DpiaStatus) -> list[SignOffKind]:
    """What ``role`` may sign on a DPIA that is ``status``, likely first: a DPO's advice
    leads for a DPO (and is offered only to a DPO: ``check_signoff`` refuses it to anyone
    else); an owner signs sections and the step-7 approvals; an approved DPIA takes only
    what ``signable`` allows (the prior consultation with the ICO)."""
    if not may_sign(role):
        return []
    others = [k for k in STEP7_KINDS if k is not SignOffKind.DPO_ADVICE]
    rows = [SignOffKind.SECTION, SignOffKind.ITEM]
    kinds = [SignOffKind.DPO_ADVICE, *rows, *others] if role is Role.DPO else [*rows, *others]
    return [k for k in kinds if signable(k, status)]


def signing_decisions(role: Role) -> list[Decision]:
    """The decisions in the order ``role`` likely takes them: a DPO advises."""
    first = Decision.ADVISE if role is Role.DPO else Decision.APPROVE
    # Endorsing is the reviewing body's, on the project's sign-off page.
    endorsing = (first, Decision.ENDORSE, Decision.WITHHOLD)
    return [first, *(d for d in Decision if d not in endorsing)]


@dataclass(frozen=True, slots=True)
class Gap:
    """A section of the assessment that is not ready: empty, stale since reviewed or
    signed, or with questions not answered (by their labels)."""

    section: str
    title: str
    state: SectionState
    unanswered: list[str]


def review_gaps(
    template: Template, content: Content, states: Mapping[str, SectionState]
) -> list[Gap]:
    """What is still empty or stale in the assessment's sections, in the template's order."""
    gaps = []
    for section in template.sections:
        if section["id"] not in REVIEWED_BEFORE_ADVICE:
            continue
        values = content.get(section["id"], {})
        unanswered = [
            str(f["label"]) for f in section["fields"] if _unanswered(values.get(f["id"]))
        ]
        state = states[section["id"]]
        if state in (SectionState.EMPTY, SectionState.STALE) or unanswered:
            gaps.append(Gap(section["id"], str(section["title"]), state, unanswered))
    return gaps


def _unanswered(value: object) -> bool:
    # "No" (False) is an answer: unlike ``content.is_empty``, which reads a section as empty.
    return value is None or value in ("", [], {})
