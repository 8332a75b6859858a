"""The record of processing's columns read from a DPIA through the template's mapping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from server.domain.errors import AccessDenied, InvalidInput
from server.domain.ropa import (
    COLUMN_IDS,
    WHOLE_DPIA,
    activities,
    check_entry,
    fingerprint,
    keeper_policy,
    load_mapping,
)
from server.domain.templates import Template, load_template
from tests.support.ropa import FILLED


def test_each_processing_operation_is_an_activity_with_the_ico_columns() -> None:
    template = load_template("uk-dpia")
    found = activities(template, FILLED, load_mapping("uk-dpia"))
    assert [a.key for a in found] == ["op-outreach", "op-report"]
    outreach = found[0].values
    assert outreach["activity"] == "Outreach teams check who the street-health team has seen"
    assert outreach["purposes"] == (
        "Find people who need help sooner\nFewer people sleeping rough for a second night."
    )
    assert outreach["individuals"] == "People sleeping rough"
    assert outreach["personal_data"] == "Name, date of birth, last seen location"
    assert outreach["special_category"] == "Yes"
    assert outreach["criminal_offence"] == "No"
    assert outreach["recipients"] == "Camden outreach team; NHS street-health team"
    assert outreach["transfers"] == "UK only (Camden's data centre)\nNo transfer outside the UK."
    assert outreach["retention"] == "12 months after last contact"
    # Technical and organisational measures only; the contract is not a security measure.
    assert outreach["security"] == "Role-based access\nMonthly access review"
    assert outreach["lawful_basis"] == "6(1)(e) Public task"
    assert "health or social care" in outreach["conditions"].lower()
    report = found[1].values
    assert report["conditions"] == ""  # "not applicable" is no condition
    assert report["retention"] == ""
    assert report["security"] == outreach["security"]  # the DPIA's measures cover both


def test_a_dpia_without_operations_is_one_activity() -> None:
    content = copy.deepcopy(FILLED)
    content["processing"]["operations"] = []
    found = activities(load_template("uk-dpia"), content, load_mapping("uk-dpia"))
    assert [a.key for a in found] == [WHOLE_DPIA]
    assert found[0].values["purposes"] == "Fewer people sleeping rough for a second night."
    assert found[0].values["lawful_basis"] == ""


def test_a_template_lacking_the_mapped_fields_fills_fewer_columns_and_never_fails() -> None:
    sparse: dict[str, Any] = {
        "id": "sparse",
        "version": 1,
        "title": "Sparse",
        "sections": [
            {
                "id": "processing",
                "title": "Processing",
                "fields": [{"id": "purposes", "kind": "richtext", "label": "Purposes"}],
            }
        ],
    }
    template = Template("sparse", 1, "Sparse", sparse)
    assert load_mapping("sparse") == load_mapping("uk-dpia")  # the default's mapping
    found = activities(template, FILLED, load_mapping("sparse"))
    assert len(found) == 1
    assert found[0].values["purposes"] == "Fewer people sleeping rough for a second night."
    assert found[0].values["security"] == "" and found[0].values["retention"] == ""


def test_the_fingerprint_follows_the_columns_drawn_from_the_dpia() -> None:
    found = activities(load_template("uk-dpia"), FILLED, load_mapping("uk-dpia"))
    values = dict(found[0].values)
    before = fingerprint(values)
    values["reference"] = "another"  # not a column drawn from the DPIA's answers
    assert fingerprint(values) == before
    values["retention"] = "6 months"
    assert fingerprint(values) != before


def test_a_hand_entry_needs_an_activity_and_bounded_text() -> None:
    with pytest.raises(InvalidInput, match="Name the processing activity"):
        check_entry({"purposes": "x"})
    with pytest.raises(InvalidInput, match="to 4000 characters or fewer"):
        check_entry({"activity": "Payroll", "purposes": "x" * 4001})
    entry = check_entry({"activity": " Payroll ", "retention": "6 years\r\nthen destroyed"})
    assert entry["activity"] == "Payroll" and entry["retention"] == "6 years\nthen destroyed"
    assert set(entry) < set(COLUMN_IDS)


def test_only_administrators_and_dpos_keep_the_record() -> None:
    keeper_policy(administrator=True, dpo=False)
    keeper_policy(administrator=False, dpo=True)
    with pytest.raises(AccessDenied):
        keeper_policy(administrator=False, dpo=False)
