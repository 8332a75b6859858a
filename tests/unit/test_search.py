"""The searchable library's pure rules: queries are words, passages are text runs, and a
document is indexed as it reads."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import InvalidInput
from server.domain.search import (
    HIT_END,
    HIT_START,
    ReviewDue,
    clean,
    parse_query,
    passage,
    searchable,
    words_of,
)
from server.domain.templates import load_template


def test_a_query_is_its_words_lowercased_once_each_and_no_operator() -> None:
    assert words_of('Sharing "data" AND (children) OR NEAR data*') == (
        "sharing",
        "data",
        "and",
        "children",
        "or",
        "near",
    )
    query = parse_query('x" OR "y')
    assert query.fts5_match() == '"x" "or" "y"'
    assert query.plain_text() == "x or y"


@given(st.text(max_size=300))
def test_any_typed_text_makes_a_safe_match_expression(raw: str) -> None:
    match = parse_query(raw).fts5_match()
    for term in match.split(" ") if match else []:
        assert term.startswith('"') and term.endswith('"')
        assert '"' not in term[1:-1]


def test_unknown_filters_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match="status"):
        parse_query("", status="nope", statuses=["draft"])
    with pytest.raises(InvalidInput, match="page"):
        parse_query("", page="99")
    with pytest.raises(InvalidInput, match="review"):
        parse_query("", review="later")
    assert parse_query("", review="overdue").review is ReviewDue.OVERDUE
    assert parse_query("").empty and not parse_query("", template="t", templates=["t"]).empty


def test_review_windows() -> None:
    today = date(2027, 3, 1)
    assert parse_query("", review="overdue").review_window(today) == (None, today)
    assert parse_query("", review="soon").review_window(today) == (today, date(2027, 4, 1))


@given(st.text(max_size=200))
def test_a_passage_keeps_every_character_but_the_marks(raw: str) -> None:
    text = clean(raw)
    marked = HIT_START + text + HIT_END + " tail"
    runs = passage(marked)
    shown = "".join(t for t, _ in runs)
    assert shown.split() == (text + " tail").split()
    assert all(HIT_START not in t and HIT_END not in t for t, _ in runs)


def test_control_characters_cannot_forge_a_mark() -> None:
    assert HIT_START not in clean(f"a{HIT_START}b{HIT_END}c") and "\x00" not in clean("\x00")
    assert passage(f"one {HIT_START}two{HIT_END} three") == (
        ("one ", False),
        ("two", True),
        (" three", False),
    )


def test_a_document_is_indexed_as_it_reads_without_computed_values() -> None:
    template = load_template("uk-dpia")
    content = {
        "need": {"aims": [{"type": "paragraph", "content": [{"text": "Plan home care"}]}]},
        "review": {"next_review": "2027-10-01"},
    }
    found = searchable(template, content, "A\x07title", ["A comment", " "])
    assert found.title == "A title"
    assert "Plan home care" in found.body
    assert "No rated risks" not in found.body
    assert found.comments == "A comment"
    assert found.next_review == date(2027, 10, 1)
