"""The risk matrix (server/domain/risk.py): ratings, levels and the heat maps' grids."""

from __future__ import annotations

from typing import Any

from server.domain.risk import (
    RiskMatrix,
    overall_residual_level,
    residual_high_accepted,
    residual_high_risks,
)
from server.domain.templates import load_template

MATRIX = RiskMatrix.from_template(load_template().content)


def grid(rows: list[dict[str, Any]], which: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """(likelihood value, severity value) → refs, for the cells that hold any."""
    (found,) = [m for m in MATRIX.heat_maps(rows) if m.id == which]
    return {(c.likelihood.value, c.severity.value): c.refs for c in found.cells() if c.refs}


def test_the_axes_come_from_the_template_severity_down_likelihood_across() -> None:
    (inherent, residual) = MATRIX.heat_maps([])
    assert (inherent.id, residual.id) == ("inherent", "residual")
    assert [p.label for p in inherent.rows] == ["Severe", "Significant", "Minimal"]
    assert [p.label for p in inherent.columns] == ["Remote", "Possible", "Probable"]
    top_right = inherent.grid[0][-1]
    assert (top_right.likelihood.label, top_right.severity.label) == ("Probable", "Severe")
    assert top_right.level is not None and top_right.level.color == "#b3261e"
    bottom_left = inherent.grid[-1][0]
    assert bottom_left.level is not None and bottom_left.level.id == "low"


def test_an_unrated_residual_is_listed_as_not_yet_rated_never_placed() -> None:
    rows = [{"ref": "R1", "likelihood": "2", "severity": "3"}]
    inherent, residual = MATRIX.heat_maps(rows)
    assert grid(rows, "inherent") == {("2", "3"): ("R1",)}
    assert grid(rows, "residual") == {}
    assert residual.unrated == ("R1",) and inherent.unrated == ()
    assert residual.placed == 0


def test_half_a_rating_or_an_unknown_value_is_unrated() -> None:
    rows = [
        {"ref": "R1", "likelihood": "2"},
        {"ref": "R2", "likelihood": "4", "severity": "1"},
        {"ref": "R3", "likelihood": True, "severity": "1"},
        {"ref": "R4", "likelihood": 3, "severity": 1.0},  # numbers are the same values
    ]
    inherent, _ = MATRIX.heat_maps(rows)
    assert inherent.unrated == ("R1", "R2", "R3")
    assert grid(rows, "inherent") == {("3", "1"): ("R4",)}


def test_refs_in_one_cell_keep_the_register_order_and_overrides_do_not_move_them() -> None:
    rows = [
        {
            "ref": "R2",
            "likelihood": "3",
            "severity": "3",
            "residual_likelihood": "1",
            "residual_severity": "1",
        },
        {
            "ref": "R1",
            "likelihood": "3",
            "severity": "3",
            "override_level": "low",
            "override_reason": "Pilot with ten people",
        },
    ]
    assert grid(rows, "inherent") == {("3", "3"): ("R2", "R1")}
    assert grid(rows, "residual") == {("1", "1"): ("R2",)}
    assessment = MATRIX.assess(rows[1])
    assert assessment.overridden and assessment.level is not None
    assert assessment.level.id == "low"
    assert assessment.inherent is not None and assessment.inherent.score == 9


def test_an_override_needs_a_reason_before_it_applies() -> None:
    assessment = MATRIX.assess({"likelihood": "1", "severity": "1", "override_level": "high"})
    assert not assessment.overridden and assessment.override_without_reason
    assert assessment.level is not None and assessment.level.id == "low"


def test_a_score_between_bands_takes_the_lower_band() -> None:
    assert MATRIX.level_for_score(5) == MATRIX.level("medium")
    assert MATRIX.level_for_score(0) is None


def test_residual_high_risk_counts_an_unreassessed_risk_at_its_level_before_measures() -> None:
    rows = [
        {
            "ref": "R1",
            "likelihood": "3",
            "severity": "3",
            "residual_likelihood": "1",
            "residual_severity": "2",
        },
        {"ref": "R2", "likelihood": "3", "severity": "2"},
        {
            "ref": "R3",
            "likelihood": "1",
            "severity": "1",
            "override_level": "high",
            "override_reason": "Children's records",
        },
        {"ref": "R4"},
        {"ref": "R5", "likelihood": "1", "severity": "1", "override_level": "high"},
    ]
    assert residual_high_risks(rows, MATRIX) == ["R2", "R3"]
    level = overall_residual_level(rows, MATRIX)
    assert level is not None and level.id == "high"
    assert not residual_high_accepted(rows, MATRIX)
    assert residual_high_accepted([{**rows[1], "effect": "accepted"}], MATRIX)
    assert overall_residual_level([{"ref": "R4"}], MATRIX) is None
