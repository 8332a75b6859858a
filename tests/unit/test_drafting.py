"""Drafting: the ISA from every DPIA field it uses, the DPIA from steps 1-3, never
overwriting, and the source fingerprints that say "source changed"."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from server.domain.content import Content
from server.domain.drafting import (
    DPIA_PREFILL,
    ISA_FROM_DPIA,
    Party,
    draft_isa,
    fill_empty,
    paragraph,
    prefill_dpia,
    source_fingerprint,
    source_text,
)
from server.domain.templates import load_template

DPIA = load_template("uk-dpia")
TEMPLATES = {
    "idea": load_template("project-idea"),
    "prescreening": load_template("project-prescreening"),
    "feasibility": load_template("project-feasibility"),
}


def text(*lines: str) -> list[dict[str, Any]]:
    return [paragraph(line) for line in lines]


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id{next(counter)}"


OPERATION_1 = {
    "id": "a",
    "ref": "P1",
    "description": "Share the housing register",
    "data_categories": "Name, address, household size",
    "special_category": False,
    "criminal_offence": True,
    "data_subjects": "Applicants",
    "frequency": "Monthly",
    "source": "Borough A housing",
    "recipients": "Borough B",
    "lawful_basis": "public-task",
    "condition": "10-dpa-schedule-1",
    "retention": "2 years",
}
OPERATION_2 = {
    "id": "b",
    "ref": "P2",
    "description": "Match with adult social care",
    "data_categories": "Care needs",
    "special_category": True,
    "criminal_offence": False,
    "data_subjects": "Adults receiving care",
    "frequency": "Weekly",
    "source": "Borough B adult social care",
    "recipients": "Borough A",
    "lawful_basis": "public-task",
    "condition": "9-2-h-health-social-care",
    "retention": "1 year",
}
DPIA_CONTENT: Content = {
    "need": {"aims": text("Fewer families in temporary accommodation")},
    "processing": {
        "purposes": text("Find households at risk early"),
        "nature": text("Sent by SFTP each month"),
        "operations": [OPERATION_1, OPERATION_2],
    },
    "necessity": {
        "achieves_purpose": text("Caseworkers act months earlier"),
        "minimisation": text("Pseudonymised until a match"),
        "rights": text("Each borough answers requests for its own residents"),
        "transparency": text("Privacy notices updated"),
    },
    "measures": {
        "plan": [
            {
                "id": "m1",
                "ref": "M1",
                "title": "Encryption",
                "description": "AES at rest",
                "type": "technical",
                "status": "implemented",
            },
            {
                "id": "m2",
                "ref": "M2",
                "title": "Contract",
                "description": "Clauses",
                "type": "contractual",
                "status": "planned",
            },
            {
                "id": "m3",
                "ref": "M3",
                "title": "Training",
                "description": "Annual",
                "type": "organisational",
                "status": "verified",
            },
        ]
    },
    "review": {"next_review": "2027-06-30"},
}
PARTIES = [
    Party("Borough A", "controller"),
    Party("Borough B", "joint_controller"),
    Party("IGfL", "reviewer"),
]


@pytest.fixture(scope="module")
def isa() -> Content:
    drafted, _ = draft_isa(DPIA_CONTENT, PARTIES, dpia_template=DPIA, new_id=ids())
    return drafted


def plain(nodes: list[dict[str, Any]]) -> list[str]:
    return ["".join(run["text"] for run in node["content"]) for node in nodes]


# -- the ISA, one test per DPIA field it uses --------------------------------------------


def test_isa_parties_are_the_project_parties_with_their_roles_reviewers_left_out(
    isa: Content,
) -> None:
    assert [(r["organisation"], r["role"], r["ref"]) for r in isa["parties"]["parties"]] == [
        ("Borough A", "controller", "O1"),
        ("Borough B", "joint_controller", "O2"),
    ]


def test_isa_purpose_from_need_aims(isa: Content) -> None:
    assert "Fewer families in temporary accommodation" in plain(isa["purpose"]["purpose"])


def test_isa_purpose_from_processing_purposes(isa: Content) -> None:
    assert plain(isa["purpose"]["purpose"])[-1] == "Find households at risk early"


def test_isa_benefits_from_necessity_achieves_purpose(isa: Content) -> None:
    assert plain(isa["purpose"]["benefits"]) == ["Caseworkers act months earlier"]


def test_isa_article6_from_operations_lawful_basis_once_each(isa: Content) -> None:
    assert isa["legal"]["article6"] == ["public-task"]


def test_isa_conditions_from_operations_condition(isa: Content) -> None:
    assert isa["legal"]["conditions"] == ["10-dpa-schedule-1", "9-2-h-health-social-care"]


def test_isa_conditions_leave_out_not_applicable() -> None:
    content = {"processing": {"operations": [OPERATION_1 | {"condition": "not-applicable"}]}}
    drafted, _ = draft_isa(content, [], dpia_template=DPIA)
    assert "conditions" not in drafted.get("legal", {})


def test_isa_data_items_from_operations_data_categories(isa: Content) -> None:
    assert [r["item"] for r in isa["data"]["items"]] == [
        "Name, address, household size",
        "Care needs",
    ]


def test_isa_data_items_from_operations_data_subjects(isa: Content) -> None:
    assert [r["subjects"] for r in isa["data"]["items"]] == [
        "Applicants",
        "Adults receiving care",
    ]


def test_isa_data_items_from_operations_special_category(isa: Content) -> None:
    assert [r["special_category"] for r in isa["data"]["items"]] == [False, True]


def test_isa_data_items_from_operations_criminal_offence(isa: Content) -> None:
    assert [r["criminal_offence"] for r in isa["data"]["items"]] == [True, False]


def test_isa_data_items_from_operations_source(isa: Content) -> None:
    assert [r["from"] for r in isa["data"]["items"]] == [
        "Borough A housing",
        "Borough B adult social care",
    ]


def test_isa_data_items_from_operations_recipients(isa: Content) -> None:
    assert [r["to"] for r in isa["data"]["items"]] == ["Borough B", "Borough A"]


def test_isa_special_categories_yes_from_operations_flags(isa: Content) -> None:
    assert isa["data"]["special_categories"] is True


def test_isa_special_categories_no_when_no_operation_has_either_flag() -> None:
    operation = OPERATION_1 | {"criminal_offence": False}
    drafted, _ = draft_isa({"processing": {"operations": [operation]}}, [], dpia_template=DPIA)
    assert drafted["data"]["special_categories"] is False


def test_isa_health_data_from_operations_health_condition(isa: Content) -> None:
    assert isa["data"]["health_data"] is True


def test_isa_health_data_left_unanswered_without_a_health_condition() -> None:
    drafted, _ = draft_isa({"processing": {"operations": [OPERATION_1]}}, [], dpia_template=DPIA)
    assert "health_data" not in drafted["data"]


def test_isa_minimisation_from_necessity_minimisation(isa: Content) -> None:
    assert plain(isa["data"]["minimisation"]) == ["Pseudonymised until a match"]


def test_isa_frequency_from_operations_frequency(isa: Content) -> None:
    assert plain(isa["transfer"]["frequency"]) == [
        "P1 Share the housing register: Monthly",
        "P2 Match with adult social care: Weekly",
    ]


def test_isa_method_from_processing_nature(isa: Content) -> None:
    assert plain(isa["transfer"]["method"]) == ["Sent by SFTP each month"]


def test_isa_security_from_technical_and_organisational_measures_only(isa: Content) -> None:
    assert plain(isa["security"]["measures"]) == [
        "M1 Encryption: AES at rest: Technical, implemented",
        "M3 Training: Annual: Organisational, verified",
    ]


def test_isa_retention_from_operations_retention(isa: Content) -> None:
    assert plain(isa["retention"]["retention"]) == [
        "P1 Share the housing register: 2 years",
        "P2 Match with adult social care: 1 year",
    ]


def test_isa_rights_from_necessity_rights(isa: Content) -> None:
    assert plain(isa["rights"]["rights"]) == ["Each borough answers requests for its own residents"]


def test_isa_transparency_from_necessity_transparency(isa: Content) -> None:
    assert plain(isa["rights"]["transparency"]) == ["Privacy notices updated"]


def test_isa_review_date_from_review_next_review(isa: Content) -> None:
    assert isa["review"]["review_date"] == "2027-06-30"


def test_isa_drafted_from_an_empty_dpia_links_nothing() -> None:
    drafted, used = draft_isa({}, [], dpia_template=DPIA)
    assert (drafted, used) == ({}, [])


def test_every_drafted_isa_field_is_linked_to_its_sources() -> None:
    drafted, used = draft_isa(DPIA_CONTENT, PARTIES, dpia_template=DPIA)
    linked = {m.target for m in used}
    assert linked == {m.target for m in ISA_FROM_DPIA}
    assert {f"{s}.{f}" for s, fields in drafted.items() for f in fields} - linked == {
        "parties.parties"
    }


def test_every_mapping_names_fields_that_exist_in_its_templates() -> None:
    isa_paths = {
        f"{s['id']}.{f['id']}" for s in load_template("uk-isa").sections for f in s["fields"]
    }

    def exists(template_id: str, path: str) -> bool:
        section, field, *column = path.split(".")
        for s in load_template(template_id).sections:
            for f in s["fields"]:
                if s["id"] == section and f["id"] == field:
                    return not column or column[0] in {c["id"] for c in f["columns"]}
        return False

    dpia_paths = {f"{s['id']}.{f['id']}" for s in DPIA.sections for f in s["fields"]}
    for mapping in ISA_FROM_DPIA:
        assert mapping.target in isa_paths, mapping.target
        assert all(exists("uk-dpia", source) for source in mapping.sources), mapping
    for mapping in DPIA_PREFILL:
        assert mapping.target in dpia_paths, mapping.target
        for source in mapping.sources:
            kind, _, path = source.partition(":")
            assert exists(TEMPLATES[kind].id, path), source


# -- source fingerprints -----------------------------------------------------------------


def test_a_source_fingerprint_changes_when_its_column_changes() -> None:
    changed = {
        **DPIA_CONTENT,
        "processing": {
            **DPIA_CONTENT["processing"],
            "operations": [OPERATION_1 | {"retention": "5 years"}, OPERATION_2],
        },
    }
    sources = ("processing.operations.description", "processing.operations.retention")
    assert source_fingerprint(DPIA_CONTENT, sources) != source_fingerprint(changed, sources)


def test_a_source_fingerprint_ignores_other_columns_of_the_same_table() -> None:
    changed = {
        **DPIA_CONTENT,
        "processing": {
            **DPIA_CONTENT["processing"],
            "operations": [OPERATION_1 | {"volume": "5000"}, OPERATION_2],
        },
    }
    sources = ("processing.operations.retention",)
    assert source_fingerprint(DPIA_CONTENT, sources) == source_fingerprint(changed, sources)


def test_a_source_text_reads_option_labels_per_row() -> None:
    assert source_text(DPIA, DPIA_CONTENT, ("processing.operations.lawful_basis",)) == (
        "Processing operations: Lawful basis (Article 6)\n"
        "P1: 6(1)(e) Public task\nP2: 6(1)(e) Public task"
    )


# -- the DPIA from steps 1-3 -------------------------------------------------------------

EARLIER: dict[str, Content] = {
    "idea": {
        "outcome": {"outcome": text("Fewer evictions"), "people": text("Private renters")},
        "action": {"actors": text("Housing officers"), "decision": text("Who to visit first")},
        "insight": {"insight": text("Which tenancies are at risk")},
        "datasets": {
            "datasets": [
                {
                    "id": "x",
                    "ref": "D1",
                    "name": "Arrears",
                    "holder": "A",
                    "personal": True,
                    "purpose": "Spot arrears",
                }
            ]
        },
    },
    "prescreening": {
        "legal": {
            "gateways": ["uk-gdpr-6-1-e", "lga-2000-wellbeing"],
            "other_gateways": text("Housing Act 1996 Part 7"),
        },
        "risks": {"subject_reaction": text("Most would expect it")},
        "ethics": {
            "minimising_negative_impact": text("Aggregate where possible"),
            "communicating_purpose": text("A web page"),
            "openness": text("Publish this DPIA"),
            "engaging_with_people": text("A residents' panel"),
        },
        "screening": {
            "triggers": ["matching-combining", "vulnerable-subjects", "innovative-technology"],
            "dpia_needed": "required",
            "rationale": text("Two criteria apply"),
        },
    },
    "feasibility": {
        "data": {
            "datasets": [
                {
                    "id": "f1",
                    "ref": "D1",
                    "dataset": "Rent arrears",
                    "held_by": "Borough A",
                    "personal": True,
                    "special_category": False,
                    "deidentify": "pseudonymised",
                    "fields": "UPRN, arrears amount",
                },
                {
                    "id": "f2",
                    "ref": "D2",
                    "dataset": "Street lighting",
                    "held_by": "Borough B",
                    "personal": False,
                },
            ]
        },
        "sharing": {"frequency": "monthly"},
    },
}


@pytest.fixture(scope="module")
def prefilled() -> Content:
    return prefill_dpia(EARLIER, templates=TEMPLATES, new_id=ids())


def test_prefill_aims_from_the_outcome_and_who_it_is_for(prefilled: Content) -> None:
    assert plain(prefilled["need"]["aims"]) == ["Fewer evictions", "Private renters"]


def test_prefill_processing_type_from_who_acts_and_the_decision(prefilled: Content) -> None:
    assert plain(prefilled["need"]["processing_type"]) == [
        "Housing officers",
        "Who to visit first",
    ]


def test_prefill_purposes_from_the_insight(prefilled: Content) -> None:
    assert plain(prefilled["processing"]["purposes"]) == ["Which tenancies are at risk"]


def test_prefill_screening_from_the_prescreening(prefilled: Content) -> None:
    assert prefilled["screening"]["triggers"] == [
        "matching-combining",
        "vulnerable-subjects",
        "innovative-technology",
    ]
    assert prefilled["screening"]["outcome"] == "required"
    assert plain(prefilled["screening"]["rationale"]) == ["Two criteria apply"]


def test_prefill_context_names_the_gateways_and_how_people_would_react(
    prefilled: Content,
) -> None:
    lines = plain(prefilled["processing"]["context"])
    assert lines[0].startswith(
        "Legal gateways identified at pre-screening: UK GDPR Article 6(1)(e)"
    )
    assert "Local Government Act 2000 section 2 (well-being power)" in lines[0]
    assert lines[1:] == ["Housing Act 1996 Part 7", "Most would expect it"]


def test_prefill_flags_vulnerable_people_and_novel_technology_from_the_triggers(
    prefilled: Content,
) -> None:
    assert prefilled["processing"]["children_vulnerable"] is True
    assert prefilled["processing"]["novel_technology"] is True


def test_prefill_operations_from_the_personal_feasibility_datasets(prefilled: Content) -> None:
    (operation,) = prefilled["processing"]["operations"]
    assert operation["ref"] == "P1" and operation["id"]
    assert operation["description"] == "Share Rent arrears"
    assert operation["data_categories"] == "UPRN, arrears amount"
    assert operation["source"] == "Borough A"
    assert operation["frequency"] == "Monthly"
    assert operation["special_category"] is False


def test_prefill_operations_take_the_one_article6_basis_ticked(prefilled: Content) -> None:
    assert prefilled["processing"]["operations"][0]["lawful_basis"] == "public-task"


def test_prefill_operations_from_step_1_datasets_without_a_feasibility() -> None:
    drafted = prefill_dpia({"idea": EARLIER["idea"]}, templates=TEMPLATES)
    (operation,) = drafted["processing"]["operations"]
    assert (operation["description"], operation["purpose"]) == ("Share Arrears", "Spot arrears")


def test_prefill_minimisation_and_transparency_from_the_ethics(prefilled: Content) -> None:
    assert plain(prefilled["necessity"]["minimisation"]) == [
        "Aggregate where possible",
        "Datasets that can be anonymised or pseudonymised:",
        "D1 Rent arrears: can be pseudonymised",
    ]
    assert plain(prefilled["necessity"]["transparency"]) == ["A web page", "Publish this DPIA"]


def test_prefill_consultation_plan_from_engaging_with_people(prefilled: Content) -> None:
    assert plain(prefilled["consultation"]["not_consulted_reason"]) == ["A residents' panel"]


def test_prefill_from_nothing_is_nothing() -> None:
    assert prefill_dpia({}, templates=TEMPLATES) == {}


def test_fill_empty_never_overwrites_what_people_wrote(prefilled: Content) -> None:
    current: Content = {
        "need": {"aims": text("Our own aims"), "processing_type": []},
        "screening": {"triggers": ["large-scale"], "outcome": None},
    }
    missing = fill_empty(current, prefilled)
    assert "aims" not in missing["need"]
    assert "triggers" not in missing["screening"]
    assert plain(missing["need"]["processing_type"]) == ["Housing officers", "Who to visit first"]
    assert missing["screening"]["outcome"] == "required"


def test_fill_empty_of_a_full_document_is_nothing(prefilled: Content) -> None:
    assert fill_empty(prefilled, prefilled) == {}


# -- docs/projects.md says the same as the code ------------------------------------------


def _doc_table(heading: str) -> list[tuple[list[str], list[str]]]:
    text_ = Path(__file__).parents[2].joinpath("docs", "projects.md").read_text()
    section = text_.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = line.strip().strip("|").split("|")
        if len(cells) >= 3 and "`" in cells[0]:
            rows.append((re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[1])))
    return rows


def test_the_docs_isa_table_matches_the_code() -> None:
    documented = _doc_table("From the DPIA to the ISA, field by field")
    expected = [([m.target], list(m.sources)) for m in ISA_FROM_DPIA]
    assert [row for row in documented if row[0] != ["parties.parties"]] == expected


def test_the_docs_prefill_table_matches_the_code() -> None:
    documented = _doc_table("What the DPIA takes from steps 1\N{EN DASH}3")
    assert documented == [([m.target], list(m.sources)) for m in DPIA_PREFILL]
