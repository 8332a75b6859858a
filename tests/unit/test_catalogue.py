"""The risk catalogue (issue 17): every shipped catalogue is checked against its own
template; answers make risks relevant, with the grounds a person reads; a dismissed risk
comes back only on new grounds; an accepted one adds linked rows; a malformed catalogue is
refused with a message naming the template and the entry."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from server.domain.catalogue import (
    ACCEPTED,
    DISMISSED,
    PROPOSED,
    Decision,
    accepted_rows,
    catalogue,
    check_reason,
    find_risk,
    next_round,
    proposal_for,
    proposals,
)
from server.domain.errors import Conflict, InvalidInput
from server.domain.templates import (
    MalformedTemplate,
    Template,
    assessment_templates,
    check_template,
    load_template,
    template_ids,
)

NOW = datetime(2026, 12, 2, tzinfo=UTC)
NEW_TEMPLATES = (
    "surveillance-dpia",
    "transfer-risk-assessment",
    "data-sharing-dpia",
    "dpia-screening",
)


def _raw(template_id: str) -> dict[str, Any]:
    path = resources.files("server.domain").joinpath("templates", f"{template_id}.json")
    content: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return content


def _empty(template: Template) -> dict[str, dict[str, Any]]:
    return {s["id"]: {f["id"]: None for f in s["fields"]} for s in template.sections}


def test_the_default_and_the_four_new_assessments_are_offered_each_with_a_catalogue() -> None:
    offered = [t.id for t in assessment_templates()]
    assert offered[0] == "uk-dpia"
    assert set(offered) == {"uk-dpia", *NEW_TEMPLATES}
    for template in assessment_templates():
        risks = catalogue(template)
        assert len(risks) >= 5, template.id
        assert all(r.measures and r.when for r in risks)


@pytest.mark.parametrize("template_id", template_ids())
def test_every_condition_of_every_catalogue_can_hold(template_id: str) -> None:
    """Each alternative of each entry, answered as it asks, proposes its risk (a condition
    that could never hold would be a silent gap in the catalogue)."""
    template = load_template(template_id)
    for risk in catalogue(template):
        for alternative in risk.when:
            content = _empty(template)
            for test in alternative.get("all", [alternative]):
                parts = test["field"].split(".")
                value = test.get("is", True if "answered" in test else None)
                if "includes" in test:
                    value = [test["includes"]]
                if len(parts) == 2:
                    content[parts[0]][parts[1]] = value
                else:
                    content[parts[0]][parts[1]] = [{"id": "x", "ref": "P1", parts[2]: value}]
            found = proposals(template, content, [])
            assert risk.id in {p.risk.id for p in found if p.state == PROPOSED}, (risk.id, test)


def test_answers_propose_risks_with_readable_grounds() -> None:
    template = load_template("uk-dpia")
    content = _empty(template)
    assert proposals(template, content, []) == []
    content["screening"]["triggers"] = ["special-category", "matching-combining"]
    content["processing"]["operations"] = [
        {"id": "a", "ref": "P1", "special_category": False},
        {"id": "b", "ref": "P2", "special_category": True},
    ]
    found = {p.risk.id: p for p in proposals(template, content, [])}
    assert set(found) == {"special-category-disclosure", "matching-reidentification"}
    texts = [g.text for g in found["special-category-disclosure"].grounds]
    assert texts == [
        "Screening: High-risk criteria that apply: "
        "Special category, criminal offence or other highly personal data",
        "2. Processing: Processing operations P2 — Special category data (Article 9): yes",
    ]
    assert all(p.state == PROPOSED for p in found.values())


def test_a_dismissed_risk_returns_only_on_new_grounds_and_an_accepted_one_never() -> None:
    template = load_template("uk-dpia")
    content = _empty(template)
    content["screening"]["triggers"] = ["special-category"]
    [proposal] = proposals(template, content, [])
    dismissed = Decision(
        proposal.risk.id,
        DISMISSED,
        frozenset(g.key for g in proposal.grounds),
        "Olive Owner",
        NOW,
        reason="Only aggregate counts are shared",
    )
    [again] = proposals(template, content, [dismissed])
    assert again.state == DISMISSED
    with pytest.raises(Conflict, match="already dismissed by"):
        proposal_for([again], proposal.risk.id)
    # The same ground gone and back: still dismissed.
    content["screening"]["triggers"] = []
    assert proposals(template, content, [dismissed])[0].state == DISMISSED
    content["screening"]["triggers"] = ["special-category"]
    assert proposals(template, content, [dismissed])[0].state == DISMISSED
    # A new ground (an operation now marked special category): proposed again, saying why.
    content["processing"]["operations"] = [{"id": "b", "ref": "P1", "special_category": True}]
    [back] = proposals(template, content, [dismissed])
    assert back.state == PROPOSED and back.again
    assert [g.key for g in back.new_grounds] == ["processing.operations[P1].special_category=True"]
    accepted = Decision(proposal.risk.id, ACCEPTED, frozenset(), "Olive Owner", NOW, ref="R1")
    assert proposals(template, content, [dismissed, accepted])[0].state == ACCEPTED


def test_all_conditions_must_hold_together() -> None:
    template = load_template("uk-dpia")
    raw = copy.deepcopy(template.content)
    raw["risk_catalogue"][0]["when"] = [
        {
            "all": [
                {"field": "processing.children_vulnerable", "is": True},
                {"field": "screening.triggers", "includes": "large-scale"},
            ]
        }
    ]
    check_template(raw, "uk-dpia")
    changed = Template("uk-dpia", 1, "t", raw)
    content = _empty(changed)
    first = raw["risk_catalogue"][0]["id"]
    content["processing"]["children_vulnerable"] = True
    assert first not in {p.risk.id for p in proposals(changed, content, [])}
    content["screening"]["triggers"] = ["large-scale"]
    assert first in {p.risk.id for p in proposals(changed, content, [])}


def test_accepting_adds_a_rated_open_risk_linked_to_its_planned_measures() -> None:
    template = load_template("uk-dpia")
    content = _empty(template)
    content["risks"]["register"] = [{"id": "r", "ref": "R4"}]
    content["measures"]["plan"] = [{"id": "m", "ref": "M2"}]
    risk = find_risk(template, "special-category-disclosure")
    rows = accepted_rows(template, risk, content)
    assert rows.register == "risks.register" and rows.plan == "measures.plan"
    assert rows.risk["ref"] == "R5"
    assert (rows.risk["likelihood"], rows.risk["severity"]) == ("2", "3")
    assert rows.risk["status"] == "open" and rows.risk["title"] == risk.title
    assert [m["ref"] for m in rows.measures] == ["M3", "M4"]
    assert rows.risk["measures"] == [m["id"] for m in rows.measures]
    assert all(m["risks"] == [rows.risk["id"]] and m["status"] == "planned" for m in rows.measures)


def test_a_template_without_an_action_plan_keeps_the_measures_in_the_risk() -> None:
    template = load_template("dpia-screening")
    risk = catalogue(template)[0]
    rows = accepted_rows(template, risk, _empty(template))
    assert rows.plan is None and rows.measures == ()
    assert "Suggested measures: " + risk.measures[0].title in rows.risk["source"]


def test_a_dismissal_needs_a_reason() -> None:
    with pytest.raises(InvalidInput, match="needs a reason"):
        check_reason("   \n ")
    assert check_reason("  not   shared ") == "not shared"


def _broken(change: Any, template_id: str = "uk-dpia") -> dict[str, Any]:
    content = copy.deepcopy(_raw(template_id))
    change(content["risk_catalogue"][0])
    return content


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["when"].append({"field": "screening.nonsense", "is": True}),
            "entry 'special-category-disclosure': condition on 'screening.nonsense': "
            "the template has no such field",
        ),
        (
            lambda e: e["when"].append({"field": "screening.triggers", "includes": "nope"}),
            "'includes' needs a multichoice and one of its options",
        ),
        (
            lambda e: e["when"].append({"field": "processing.children_vulnerable", "is": "yes"}),
            "a yes/no answer is true or false",
        ),
        (
            lambda e: e["when"].append({"field": "screening.outcome", "is": "maybe"}),
            "'maybe' is not one of its options",
        ),
        (lambda e: e.update(likelihood="4"), "likelihood '4' is not on the matrix (1, 2, 3)"),
        (lambda e: e.update(harm_type="boredom"), "harm_type 'boredom' is not an option"),
        (lambda e: e.update(measures=[]), "it needs at least one suggested measure"),
        (lambda e: e.update(when=[]), "'when' must list at least one condition"),
        (lambda e: e.update(title=""), "it has no title"),
        (lambda e: e.update(id="Bad Id"), "entry 1: its id must be lower case"),
        (
            lambda e: e["measures"].append({"title": "x", "type": "magic"}),
            "measure type 'magic' is not an option of the plan",
        ),
    ],
)
def test_a_malformed_catalogue_is_refused_naming_the_template_and_entry(
    change: Any, message: str
) -> None:
    with pytest.raises(MalformedTemplate) as refused:
        check_template(_broken(change), "uk-dpia")
    assert str(refused.value).startswith("Template 'uk-dpia', risk catalogue ")
    assert message in str(refused.value)


def test_a_catalogue_needs_a_register_and_unique_ids() -> None:
    idea = copy.deepcopy(_raw("project-idea"))
    idea["risk_catalogue"] = _raw("uk-dpia")["risk_catalogue"]
    with pytest.raises(MalformedTemplate, match="needs a risk register"):
        check_template(idea, "project-idea")
    twice = copy.deepcopy(_raw("uk-dpia"))
    twice["risk_catalogue"].append(twice["risk_catalogue"][0])
    with pytest.raises(MalformedTemplate, match="the id is used twice"):
        check_template(twice, "uk-dpia")


def test_a_sign_off_bound_to_a_section_the_template_lacks_binds_the_whole_document() -> None:
    """The new assessments have no "dpo_advice" or "review" section: DPO advice (which
    approval needs) and "kept under review" bind the whole document there, and still bind
    their own section in the UK DPIA."""
    from pycrdt import Doc

    from server.domain.access import Role
    from server.domain.content import document_content
    from server.domain.dpias import DpiaStatus
    from server.domain.workflow import SectionState, signing_policy

    for template_id, expected in (("surveillance-dpia", "dpia"), ("uk-dpia", "dpo_advice")):
        template = load_template(template_id)
        signing = signing_policy(
            "dpo_advice",
            "advise",
            "",
            role=Role.DPO,
            status=DpiaStatus.DPO_REVIEW,
            template=template,
            content=document_content(Doc(), template),
            states={s: SectionState.REVIEWED for s in template.section_ids()},
            conditions="",
            reasons="",
            is_author=False,
            party="London Borough of Camden",
        )
        assert signing.target == expected


def test_a_decision_takes_the_round_after_its_risk_s_earlier_decisions() -> None:
    earlier = [
        Decision("matching", DISMISSED, frozenset({"a"}), "Olive Owner", NOW, reason="No"),
        Decision("sensitive", DISMISSED, frozenset({"a"}), "Olive Owner", NOW, reason="No"),
        Decision("matching", DISMISSED, frozenset({"a", "b"}), "Olive Owner", NOW, round=1),
    ]
    assert next_round(earlier, "matching") == 2
    assert next_round(earlier, "sensitive") == 1
    assert next_round(earlier, "children") == 0  # never decided: the first round
