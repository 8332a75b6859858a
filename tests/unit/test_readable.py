"""How content reads in a record (server/domain/readable.py): labels, never codes."""

from __future__ import annotations

from typing import Any

from server.domain.readable import (
    Cards,
    Grid,
    Text,
    field_text,
    long_date,
    read_content,
    richtext_lines,
    target_label,
)
from server.domain.templates import load_template

TEMPLATE = load_template()


def content(**fields: Any) -> dict[str, dict[str, Any]]:
    """Empty content of the template with ``section__field=value`` filled in."""
    body: dict[str, dict[str, Any]] = {
        s["id"]: {f["id"]: None for f in s["fields"]} for s in TEMPLATE.sections
    }
    for key, value in fields.items():
        section, field = key.split("__")
        body[section][field] = value
    return body


def view(body: dict[str, dict[str, Any]], path: str) -> Any:
    section = path.split(".")[0]
    (found,) = [
        f
        for s in read_content(TEMPLATE, body)
        if s.id == section
        for f in s.fields
        if f.path == path
    ]
    return found


def test_dates_read_as_day_month_year_whatever_the_locale() -> None:
    assert long_date("2027-03-03") == "3 March 2027"
    assert long_date("not a date") == "not a date"


def test_choices_yes_no_and_lists_print_their_labels() -> None:
    body = content(
        screening__outcome="required",
        screening__triggers=["vulnerable-subjects", "matching-combining"],
        processing__children_vulnerable=False,
        review__next_review="2027-03-03",
    )
    assert view(body, "screening.outcome").block == Text(("DPIA required",))
    assert view(body, "screening.triggers").block == Text(
        (
            "Data about vulnerable people, including children and employees",
            "Matching or combining datasets from different sources",
        )
    )
    assert view(body, "processing.children_vulnerable").block == Text(("No",))
    assert view(body, "review.next_review").block == Text(("3 March 2027",))
    assert view(body, "outcome.decision").block == Text(("Not answered",))
    assert view(body, "outcome.decision").empty


def test_narrow_tables_are_grids_and_wide_ones_cards_with_the_template_labels() -> None:
    risk = {
        "id": "r-1",
        "ref": "R1",
        "title": "Seen by the wrong team",
        "likelihood": "2",
        "severity": "3",
        "harm_type": "loss-of-confidentiality",
        "measures": ["m-1"],
    }
    measure = {"id": "m-1", "ref": "M1", "title": "Role-based access", "risks": ["r-1", "gone"]}
    consultee = {
        "id": "c-1",
        "ref": "C1",
        "who": "Outreach team",
        "type": "internal",
        "date": "2026-11-02",
    }
    body = content(
        risks__register=[risk], measures__plan=[measure], consultation__consultees=[consultee]
    )
    grid = view(body, "consultation.consultees").block
    assert isinstance(grid, Grid)
    assert grid.header[:5] == ("Ref", "Who", "Internal or external", "Method", "Date")
    assert grid.rows[0][:5] == ("C1", "Outreach team", "Internal", "—", "2 November 2026")
    cards = view(body, "risks.register").block
    assert isinstance(cards, Cards)
    (card,) = cards.cards
    pairs = dict(card.pairs)
    assert card.title == "R1 Seen by the wrong team"
    assert pairs["Type of harm"] == "Loss of confidentiality"
    assert pairs["Likelihood"] == "Possible"
    assert pairs["Risk level before measures"] == "High (likelihood Possible, severity Severe)"
    assert pairs["Risk level after measures"] == "Not yet rated"
    assert pairs["Measures that treat this risk"] == "M1 Role-based access"
    plan = view(body, "measures.plan").block
    assert isinstance(plan, Cards)
    assert dict(plan.cards[0].pairs)["Risks addressed"] == (
        "R1 Seen by the wrong team; A row since deleted"
    )
    assert "harm_type" not in field_text(TEMPLATE, body, "risks", "register")


def test_the_outcome_says_which_risks_it_counts_before_measures() -> None:
    body = content(risks__register=[{"id": "r", "ref": "R1", "likelihood": "2", "severity": "3"}])
    overall = next(
        f
        for s in read_content(TEMPLATE, body)
        for f in s.fields
        if f.path == "computed.overall_residual_risk"
    )
    assert overall.block == Text(
        ("High (counting R1 at the level before measures, not yet rated after them)",)
    )


def test_rich_text_keeps_paragraphs_and_list_items() -> None:
    nodes = [
        {"type": "paragraph", "content": [{"text": "Aims"}]},
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"text": "one"}]}],
                },
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"text": "two"}]}],
                },
            ],
        },
        {
            "type": "orderedList",
            "attrs": {"start": 3},
            "content": [
                {
                    "type": "listItem",
                    "content": [{"type": "paragraph", "content": [{"text": "x"}]}],
                },
            ],
        },
    ]
    assert richtext_lines(nodes) == ["Aims", "• one", "• two", "3. x"]


def test_sign_off_targets_read_as_what_was_signed() -> None:
    body = content(risks__register=[{"id": "r", "ref": "R1", "title": "Seen by the wrong team"}])
    assert target_label(TEMPLATE, body, "need") == "Step 1: the need for a DPIA"
    assert target_label(TEMPLATE, body, "dpia") == "the whole DPIA"
    assert target_label(TEMPLATE, body, "risks.register:R1") == "R1 Seen by the wrong team"
    assert target_label(TEMPLATE, body, "risks.register:R9") == "R9 (no longer in the DPIA)"
