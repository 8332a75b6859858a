"""What the workflow offers each role: only what the policies allow, the likely step first;
and the leak detector the live wording tests use finds the leaks people met."""

from __future__ import annotations

import pytest

from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import DomainError
from server.domain.guidance import (
    dpia_steps,
    review_gaps,
    section_steps,
    signing_decisions,
    signing_kinds,
)
from server.domain.templates import load_template
from server.domain.workflow import (
    Decision,
    SectionAction,
    SectionState,
    SignOffKind,
    section_step_policy,
    transition,
)
from tests.support.wording import leaks

TEMPLATE = load_template()


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("state", list(SectionState))
@pytest.mark.parametrize("status", [DpiaStatus.DRAFT, DpiaStatus.IN_REVIEW, DpiaStatus.APPROVED])
def test_a_section_step_is_offered_exactly_when_the_policy_takes_it(
    role: Role, state: SectionState, status: DpiaStatus
) -> None:
    states = dict.fromkeys(TEMPLATE.section_ids(), SectionState.EMPTY) | {"need": state}
    offered = section_steps("need", states, role, status)
    for action in SectionAction:
        try:
            section_step_policy(action.value, "need", states, role, status, "because")
        except DomainError:
            assert action not in offered
        else:
            assert action in offered


def test_a_dpo_is_offered_review_first_and_never_submit() -> None:
    states = dict.fromkeys(TEMPLATE.section_ids(), SectionState.SUBMITTED)
    assert section_steps("need", states, Role.DPO, DpiaStatus.DRAFT) == [
        SectionAction.REVIEW,
        SectionAction.REQUEST_CHANGES,
    ]
    states["need"] = SectionState.IN_PROGRESS
    assert section_steps("need", states, Role.DPO, DpiaStatus.DRAFT) == []
    assert section_steps("need", states, Role.EDITOR, DpiaStatus.DRAFT) == [SectionAction.SUBMIT]
    assert section_steps("need", states, Role.VIEWER, DpiaStatus.DRAFT) == []


def test_the_plain_step_forward_leads_and_each_step_is_one_the_rule_allows() -> None:
    owner = dpia_steps(DpiaStatus.AWAITING_APPROVAL, Role.OWNER)
    assert owner[0].name == "approve"
    assert [t.needs_reasons for t in owner] == sorted(t.needs_reasons for t in owner)
    for status in DpiaStatus:
        for role in Role:
            for step in dpia_steps(status, role):
                transition(status, step.target.value, role, "because")  # does not raise
    assert [t.label for t in dpia_steps(DpiaStatus.DRAFT, Role.EDITOR)] == ["Send for review"]
    assert dpia_steps(DpiaStatus.DRAFT, Role.DPO) == []
    assert dpia_steps(DpiaStatus.DPO_REVIEW, Role.DPO)[0].name == "advice given"


def test_a_dpo_signs_advice_first_an_owner_sections_and_others_nothing() -> None:
    draft = DpiaStatus.DRAFT
    assert signing_kinds(Role.DPO, draft)[0] is SignOffKind.DPO_ADVICE
    assert signing_decisions(Role.DPO)[0] is Decision.ADVISE
    assert SignOffKind.DPO_ADVICE not in signing_kinds(Role.OWNER, draft)
    assert signing_kinds(Role.OWNER, draft)[0] is SignOffKind.SECTION
    assert signing_decisions(Role.OWNER)[0] is Decision.APPROVE
    for role in (Role.EDITOR, Role.COMMENTER, Role.VIEWER):
        assert signing_kinds(role, draft) == []


def test_an_approved_dpia_offers_only_the_prior_consultation_and_a_closed_one_nothing() -> None:
    for role in (Role.OWNER, Role.DPO):
        assert signing_kinds(role, DpiaStatus.APPROVED) == [SignOffKind.PRIOR_CONSULTATION]
        assert signing_kinds(role, DpiaStatus.ARCHIVED) == []


def test_the_gaps_name_empty_stale_and_unanswered_sections_by_their_titles() -> None:
    content = {s["id"]: {f["id"]: None for f in s["fields"]} for s in TEMPLATE.sections}
    content["need"] = {"aims": [{"type": "paragraph"}], "processing_type": "x"} | {
        "why_needed": "y",
        "links": "z",
    }
    content["consultation"]["individuals_consulted"] = False  # "No" is an answer
    states = dict.fromkeys(TEMPLATE.section_ids(), SectionState.EMPTY)
    states["need"] = SectionState.REVIEWED
    states["risks"] = SectionState.STALE
    gaps = {g.section: g for g in review_gaps(TEMPLATE, content, states)}
    assert "need" not in gaps
    assert gaps["risks"].state is SectionState.STALE
    assert gaps["screening"].title == "Screening: is a DPIA needed?"
    assert "outcome" not in gaps and "review" not in gaps  # not part of the assessment
    fields = TEMPLATE.sections[[s["id"] for s in TEMPLATE.sections].index("consultation")]
    labels = [f["label"] for f in fields["fields"] if f["id"] != "individuals_consulted"]
    assert gaps["consultation"].unanswered == labels


@pytest.mark.parametrize(
    "text",
    [
        "need is now submitted.",
        "Section signed off (need)",
        "approve",
        "Priya Shah changed need in DPIA-CAM-2026-1",
        "submit",
        "You take part as commenter.",
        "Read only (viewer)",
        "The DPIA is now in_review.",
        "Signed by Dee (dpo, Camden)",
    ],
)
def test_the_detector_finds_each_leak_people_met(text: str) -> None:
    assert leaks(text)


@pytest.mark.parametrize(
    "text",
    [
        "“Step 1: the need for a DPIA” is now submitted.",
        "You take part as a commenter.",
        "Approved",
        "Accepting it needs reasons, and prior consultation with the ICO.",
        "Open it: https://opendpia.test/dpias/DPIA-CAM-2026-1#dpo_advice",
        "The DPO reviews what the owner wrote.",
    ],
)
def test_the_detector_lets_sentences_be(text: str) -> None:
    assert leaks(text) == []
