"""The template library's pure rules: naming, checking a draft (the field named), the
registry of published versions, and what moving between two versions changes."""

from __future__ import annotations

import json

import pytest

from server.domain.errors import InvalidInput
from server.domain.template_library import new_template_id, parse_draft, template_changes
from server.domain.templates import (
    MalformedTemplate,
    UnknownTemplate,
    load_template,
    register_template,
)


def _version(template_id: str, version: int) -> dict[str, object]:
    content = json.loads(json.dumps(load_template("uk-dpia").content))
    content.update(id=template_id, version=version, title="Test template")
    # The catalogue's conditions name fields these tests remove or change.
    content.pop("risk_catalogue", None)
    return content


def test_a_new_template_is_named_after_its_organisation_and_title() -> None:
    assert new_template_id("CAM", "Street CCTV: 2027!") == "cam-street-cctv-2027"
    assert new_template_id("CAM", "   ") == "cam-template"
    assert len(new_template_id("CAM", "x" * 300)) <= 50


def test_a_draft_is_checked_and_the_field_at_fault_named() -> None:
    content = _version("t-unit-a", 1)
    content["sections"][0]["fields"][1]["kind"] = "slider"  # type: ignore[index]
    with pytest.raises(InvalidInput, match=r"field screening.outcome: kind 'slider'"):
        parse_draft(json.dumps(content), "t-unit-a", 1)
    with pytest.raises(InvalidInput, match=r"not valid JSON: .* line 1, column 2"):
        parse_draft("{x", "t-unit-a", 1)
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_draft("[]", "t-unit-a", 1)
    # The id and version are the draft's, whatever the text says.
    good = _version("something-else", 9)
    assert parse_draft(json.dumps(good), "t-unit-a", 2)["id"] == "t-unit-a"


def test_published_versions_are_loaded_by_id_and_version() -> None:
    register_template(_version("t-unit-b", 1))
    second = _version("t-unit-b", 2)
    second["title"] = "Second"
    register_template(second)
    assert load_template("t-unit-b", 1).title == "Test template"
    assert load_template("t-unit-b").title == "Second"  # newest
    with pytest.raises(UnknownTemplate):
        load_template("t-unit-b", 3)
    with pytest.raises(UnknownTemplate):
        load_template("t-unit-never")
    with pytest.raises(MalformedTemplate, match="shipped template"):
        register_template(_version("uk-dpia", 7))
    broken = _version("t-unit-c", 1)
    broken["sections"] = []
    with pytest.raises(MalformedTemplate, match="no sections"):
        register_template(broken)


def test_what_a_move_changes_and_which_answers_are_kept() -> None:
    old = register_template(_version("t-unit-d", 1))
    content = _version("t-unit-d", 2)
    sections = content["sections"]
    assert isinstance(sections, list)
    sections[0]["title"] = "Renamed screening"
    sections[1]["fields"][0]["label"] = "Renamed aims"
    sections[1]["fields"].pop(1)  # need.processing_type
    sections[2]["fields"][4]["kind"] = "text"  # processing.children_vulnerable was yesno
    sections.pop(3)  # consultation
    sections.append(
        {"id": "extra", "title": "Extra", "fields": [{"id": "a", "label": "A", "kind": "text"}]}
    )
    sections[0]["fields"].append({"id": "more", "label": "More", "kind": "text"})
    new = register_template(content)
    answered = {"need.processing_type", "processing.children_vulnerable", "need.aims"}
    answered.add("consultation.processors")
    changes = template_changes(old, new, answered)
    assert changes.sections_added == ["Extra"]
    assert (
        changes.sections_removed == ["Step 3: consultation"] or len(changes.sections_removed) == 1
    )
    assert changes.sections_renamed[0][1] == "Renamed screening"
    assert changes.fields_renamed[0][1] == "Renamed aims"
    assert [f.split(": ")[1] for f in changes.fields_added] == ["More"]
    assert len(changes.fields_removed) == 1 and len(changes.fields_rekinded) == 1
    assert changes.orphaned == [
        "need.processing_type",
        "processing.children_vulnerable",
        "consultation.processors",
    ]
    assert not changes.nothing
    assert template_changes(old, old, answered).nothing
