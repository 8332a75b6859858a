"""Pure rules: canonical content, bound content, workflow transitions, sign-off checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc

from server.domain.access import Role
from server.domain.audit import GENESIS, AuditRecord, verify
from server.domain.content import (
    bound_sections,
    canonical,
    content_hash,
    document_content,
    write_content,
)
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.templates import load_template
from server.domain.workflow import (
    SignOffKind,
    check_signoff,
    transition,
)

TEMPLATE = load_template()
words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12
)
run = st.fixed_dictionaries({"text": words}, optional={"marks": st.just({"bold": {}})})
paragraph = st.builds(
    lambda runs: {"type": "paragraph", "content": runs}, st.lists(run, max_size=3)
)


def _merge_runs(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent runs with the same marks are one run once written (Yjs merges them)."""
    out: list[dict[str, Any]] = []
    for node in nodes:
        runs: list[dict[str, Any]] = []
        for r in node["content"]:
            if runs and runs[-1].get("marks") == r.get("marks"):
                runs[-1] = {**runs[-1], "text": runs[-1]["text"] + r["text"]}
            else:
                runs.append(dict(r))
        out.append({**node, "content": runs})
    return out


@settings(max_examples=60, deadline=None)
@given(
    aims=st.lists(paragraph, max_size=3),
    outcome=st.sampled_from([None, "required", "advisable"]),
    triggers=st.lists(st.sampled_from(["large-scale", "biometric", "tracking"]), unique=True),
    rows=st.lists(
        st.fixed_dictionaries({"title": words, "likelihood": st.sampled_from(["1", "2", "3"])}),
        max_size=3,
    ),
)
def test_content_written_into_a_document_reads_back_the_same(
    aims: list[dict[str, Any]], outcome: str | None, triggers: list[str], rows: list[dict[str, Any]]
) -> None:
    content = document_content(Doc(), TEMPLATE)
    content["need"]["aims"] = _merge_runs(aims)
    content["screening"]["outcome"] = outcome
    content["screening"]["triggers"] = triggers or None
    content["risks"]["register"] = [
        {"id": f"id{i}", "ref": f"R{i + 1}", **r} for i, r in enumerate(rows)
    ]
    doc: Doc[Any] = Doc()
    with doc.transaction():
        write_content(doc, TEMPLATE, content)
    assert canonical(document_content(doc, TEMPLATE)) == canonical(content)


def test_bound_content_follows_the_dependencies_of_the_dpia_model() -> None:
    assert bound_sections(TEMPLATE, "measures") == ["processing", "risks", "measures"]
    assert bound_sections(TEMPLATE, "consultation") == ["consultation"]
    assert "consultation" in bound_sections(TEMPLATE, "signoff")
    assert bound_sections(TEMPLATE, "dpia") == TEMPLATE.section_ids()
    content = document_content(Doc(), TEMPLATE)
    before = content_hash(content, ["consultation"])
    content["consultation"]["individuals_consulted"] = True
    assert content_hash(content, ["consultation"]) != before


def test_transitions_are_checked_by_state_role_and_reasons() -> None:
    assert transition(DpiaStatus.DRAFT, "in_review", Role.EDITOR, "").target is DpiaStatus.IN_REVIEW
    with pytest.raises(AccessDenied):
        transition(DpiaStatus.AWAITING_APPROVAL, "approved", Role.DPO, "")
    with pytest.raises(InvalidInput, match="reasons"):
        transition(DpiaStatus.AWAITING_APPROVAL, "rejected", Role.OWNER, " ")
    with pytest.raises(InvalidInput, match="cannot become"):
        transition(DpiaStatus.APPROVED, "draft", Role.OWNER, "why not")
    with pytest.raises(InvalidInput, match="cannot become"):
        transition(DpiaStatus.ARCHIVED, "abandoned", Role.OWNER, "done")


def test_sign_off_rules() -> None:
    def sign(kind: SignOffKind, decision: str, role: Role = Role.OWNER, **kw: Any) -> str:
        args = {"conditions": "", "reasons": "", "is_author": False, "accepts_high_risk": False}
        return check_signoff(kind, decision, role, **{**args, **kw}).value

    assert sign(SignOffKind.DPO_ADVICE, "advise", Role.DPO) == "advise"
    with pytest.raises(AccessDenied, match="Separation"):
        sign(SignOffKind.DPO_ADVICE, "advise", Role.DPO, is_author=True)
    with pytest.raises(AccessDenied):
        sign(SignOffKind.DPO_ADVICE, "advise", Role.OWNER)
    with pytest.raises(AccessDenied):
        sign(SignOffKind.PARTY_APPROVAL, "approve", Role.EDITOR)
    with pytest.raises(InvalidInput, match="conditions"):
        sign(SignOffKind.PARTY_APPROVAL, "approve_with_conditions")
    with pytest.raises(InvalidInput, match="residual high risk"):
        sign(SignOffKind.RESIDUAL_RISKS_APPROVED, "approve", accepts_high_risk=True)
    assert sign(SignOffKind.RESIDUAL_RISKS_APPROVED, "approve") == "approve"
    with pytest.raises(InvalidInput, match="The decision on"):
        sign(SignOffKind.DPO_ADVICE_DECISION, "approve")


def test_a_chain_verifies_and_any_change_names_its_link() -> None:
    records = []
    previous = GENESIS
    for position in range(1, 4):
        record = AuditRecord(
            "D",
            position,
            "k",
            "a",
            "browser",
            None,
            0,
            datetime(2026, 1, position, tzinfo=UTC),
            "{}",
            previous,
        )
        record = record.chained()
        previous = record.hash
        records.append((position, record))
    assert verify(records, 3, previous) is None
    broken = verify(records[:2], 3, previous)
    assert broken is not None and "3 were written" in broken.reason
    assert verify([records[0], records[2]], 3, previous).position == 2  # type: ignore[union-attr]
