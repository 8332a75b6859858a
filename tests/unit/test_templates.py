"""Every shipped template loads and is well formed; a malformed one is refused with a
message naming the template and the field at fault."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from server.domain.projects import DocumentKind
from server.domain.templates import (
    MalformedTemplate,
    check_template,
    load_template,
    template_ids,
)


def _raw(template_id: str) -> dict[str, Any]:
    path = resources.files("server.domain").joinpath("templates", f"{template_id}.json")
    content: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return content


def test_every_step_of_a_project_has_a_shipped_template() -> None:
    assert {kind.template_id for kind in DocumentKind} <= set(template_ids())


@pytest.mark.parametrize("template_id", template_ids())
def test_a_shipped_template_loads_and_is_well_formed(template_id: str) -> None:
    template = load_template(template_id)
    assert template.id == template_id
    assert template.sections


def test_the_isa_names_its_signatories_in_the_shape_the_sign_off_rules_read() -> None:
    assert load_template("uk-isa").content["signatories"] == {
        "controller": ["dpo", "siro"],
        "joint_controller": ["dpo", "siro"],
        "health": ["caldicott_guardian"],
    }


def test_the_isa_asks_whether_health_or_social_care_data_is_shared() -> None:
    data = next(s for s in load_template("uk-isa").sections if s["id"] == "data")
    field = next(f for f in data["fields"] if f["id"] == "health_data")
    assert field["kind"] == "yesno"


def test_pre_screening_offers_the_dpia_screening_criteria_exactly() -> None:
    def options(template_id: str, section: str, field: str) -> list[str]:
        spec = next(s for s in load_template(template_id).sections if s["id"] == section)
        found = next(f for f in spec["fields"] if f["id"] == field)
        return [o["value"] for o in found["options"]]

    assert options("project-prescreening", "screening", "triggers") == options(
        "uk-dpia", "screening", "triggers"
    )


def _broken(change: Any) -> dict[str, Any]:
    content = copy.deepcopy(_raw("uk-isa"))
    change(content)
    return content


def _purpose(content: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = next(s for s in content["sections"] if s["id"] == "purpose")
    return section


def _items(content: dict[str, Any]) -> dict[str, Any]:
    section = next(s for s in content["sections"] if s["id"] == "data")
    field: dict[str, Any] = next(f for f in section["fields"] if f["id"] == "items")
    return field


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: _purpose(c)["fields"].append(dict(_purpose(c)["fields"][0])),
            "'uk-isa', field purpose.purpose: the id is used twice",
        ),
        (
            lambda c: c["sections"].append(copy.deepcopy(_purpose(c))),
            "'uk-isa', section 'purpose': the id is used twice",
        ),
        (
            lambda c: _purpose(c)["fields"][0].__setitem__("kind", "essay"),
            "'uk-isa', field purpose.purpose: kind 'essay' is not one of",
        ),
        (
            lambda c: _purpose(c)["fields"].append(
                {"id": "basis", "label": "Basis", "kind": "choice", "options": []}
            ),
            "'uk-isa', field purpose.basis: a choice needs at least one option",
        ),
        (
            lambda c: _purpose(c)["fields"].append(
                {
                    "id": "basis",
                    "label": "Basis",
                    "kind": "choice",
                    "options": [{"value": "a", "label": "A"}, {"value": "a", "label": "B"}],
                }
            ),
            "'uk-isa', field purpose.basis: option 'a' is listed twice",
        ),
        (
            lambda c: _items(c)["columns"].append(dict(_items(c)["columns"][0])),
            "'uk-isa', column data.items.item: the id is used twice",
        ),
        (
            lambda c: _items(c)["columns"][0].__setitem__("kind", "richtext"),
            "'uk-isa', column data.items.item: kind 'richtext' is not one of",
        ),
        (
            lambda c: _purpose(c)["fields"][0].__setitem__("label", ""),
            "'uk-isa', field purpose.purpose: it has no label",
        ),
        (
            lambda c: _purpose(c)["fields"].append(
                {
                    "id": "x",
                    "label": "X",
                    "kind": "multichoice",
                    "options": [],
                    "options_from": "risks.register",
                }
            ),
            "'uk-isa', field purpose.x: options_from 'risks.register' is not a table",
        ),
    ],
)
def test_a_malformed_template_is_refused_naming_the_template_and_field(
    change: Any, message: str
) -> None:
    with pytest.raises(MalformedTemplate) as refused:
        check_template(_broken(change), "uk-isa")
    assert message in str(refused.value)


def test_a_template_whose_id_is_not_its_file_name_is_refused() -> None:
    with pytest.raises(MalformedTemplate, match="its id must be its file name"):
        check_template(_raw("uk-isa"), "uk-dpia")
