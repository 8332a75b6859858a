"""Review cycles' pure rules: due dates, which reminders are due, triggers named in a reply,
and templates' review cycles checked on load."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from server.domain import wording
from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.reviews import (
    check_trigger_report,
    due_date,
    reminders_due,
    review_cycle_of,
    start_review_policy,
    trigger_in_reply,
)
from server.domain.templates import MalformedTemplate, check_template, load_template

CYCLE = review_cycle_of(load_template("uk-dpia").content)


def test_every_shipped_document_template_names_the_six_triggers() -> None:
    for name in ("uk-dpia", "uk-isa"):
        cycle = review_cycle_of(load_template(name).content)
        assert cycle is not None
        ids = {t.id for t in cycle.triggers}
        assert {"new-data", "new-partner", "new-technology", "breach", "complaint"} <= ids
        assert "law-change" in ids


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c.update(date="review.owner"), "must name a date field"),
        (lambda c: c.update(frequency="review.next_review"), "must name a choice field"),
        (lambda c: c.update(triggers=[]), "needs a list of triggers"),
        (lambda c: c["triggers"].append(dict(c["triggers"][0])), "listed twice"),
        (lambda c: c["triggers"].append({"id": "Bad id", "label": "x"}), "lower case"),
        (lambda c: c["triggers"].append({"id": "date", "label": "x"}), "lower case"),
        (lambda c: c["triggers"].append({"id": "x", "label": " "}), "has no label"),
    ],
)
def test_a_malformed_review_cycle_is_refused_on_load_naming_what_is_wrong(
    change: object, problem: str
) -> None:
    content = copy.deepcopy(load_template("uk-dpia").content)
    change(content["review_cycle"])  # type: ignore[operator]
    with pytest.raises(MalformedTemplate, match=problem):
        check_template(content, "uk-dpia")


def test_the_due_date_is_the_date_field_else_the_frequency_from_approval() -> None:
    assert CYCLE is not None
    dated = {"review": {"next_review": "2027-03-01", "frequency": "6-months"}}
    assert due_date(CYCLE, dated, date(2026, 1, 31)) == date(2027, 3, 1)
    by_frequency = {"review": {"next_review": None, "frequency": "6-months"}}
    assert due_date(CYCLE, by_frequency, date(2026, 8, 31)) == date(2027, 2, 28)
    assert due_date(CYCLE, by_frequency, None) is None
    assert due_date(CYCLE, {"review": {"next_review": "not a date"}}, None) is None


def test_each_offset_is_due_once_from_its_day_until_the_review_date() -> None:
    due = date(2027, 3, 1)
    offsets = (30, 7, 1)
    assert reminders_due(due, date(2027, 1, 29), offsets, set()) == []
    assert reminders_due(due, date(2027, 1, 30), offsets, set()) == [30]
    assert reminders_due(due, date(2027, 1, 30), offsets, {30}) == []
    # A server down for weeks: every passed offset at once (one email, the nearest).
    assert reminders_due(due, date(2027, 2, 28), offsets, {30}) == [7, 1]
    assert reminders_due(due, date(2027, 3, 1), offsets, set()) == []


@pytest.mark.parametrize(
    ("text", "trigger", "what"),
    [
        ("This has changed: a new partner, the police\n> quoted", "new-partner", "a new partner,"),
        ("this has changed - we moved to a new cloud", "other", "we moved to a new cloud"),
        ("A data breach: a laptop was stolen", "breach", "a laptop was stolen"),
        ("Complaint: a resident complained", "complaint", "a resident complained"),
        ("Review trigger: a change of law in April", "law-change", "a change of law in April"),
    ],
)
def test_a_reply_raises_the_trigger_it_names(text: str, trigger: str, what: str) -> None:
    found = trigger_in_reply(CYCLE, text)
    assert found is not None
    assert found[0].id == trigger and found[1].startswith(what)


def test_the_reply_the_emails_suggest_raises_a_trigger() -> None:
    """The words an approved document's email asks for are words the parser reads."""
    hint = wording.review_reply_hint(["New data"])
    assert wording.TRIGGER_REPLY_START in hint
    found = trigger_in_reply(CYCLE, f"{wording.TRIGGER_REPLY_START} we now keep it for 7 years")
    assert found is not None and found[1] == "we now keep it for 7 years"


@pytest.mark.parametrize(
    "text", ["Thanks, that looks right.", "Another point: the retention is long", ""]
)
def test_an_ordinary_reply_raises_no_trigger(text: str) -> None:
    assert trigger_in_reply(CYCLE, text) is None


def test_a_trigger_is_raised_only_on_an_approved_document_with_a_known_trigger() -> None:
    assert (
        check_trigger_report(CYCLE, DpiaStatus.IN_FORCE, "breach", " a  laptop ")[1] == "a laptop"
    )
    with pytest.raises(InvalidInput, match="approved"):
        check_trigger_report(CYCLE, DpiaStatus.DRAFT, "breach", "")
    with pytest.raises(InvalidInput, match="Choose one"):
        check_trigger_report(CYCLE, DpiaStatus.IN_FORCE, "meteor", "")
    with pytest.raises(InvalidInput, match="no review triggers"):
        check_trigger_report(None, DpiaStatus.IN_FORCE, "breach", "")


def test_only_owners_and_dpos_start_a_review_of_an_approved_document_once() -> None:
    start_review_policy(Role.DPO, DpiaStatus.IN_FORCE)
    start_review_policy(Role.OWNER, DpiaStatus.APPROVED)
    with pytest.raises(AccessDenied):
        start_review_policy(Role.EDITOR, DpiaStatus.IN_FORCE)
    with pytest.raises(InvalidInput, match="under way"):
        start_review_policy(Role.OWNER, DpiaStatus.UNDER_REVIEW)
    with pytest.raises(InvalidInput, match="draft"):
        start_review_policy(Role.OWNER, DpiaStatus.DRAFT)
