"""The risk matrix: one definition of how a risk is rated and where it sits on the heat maps.

Everything here is read from the template's ``risk_matrix`` (docs/document-model.md): the
likelihood and severity scales (a stored value, its score and its label), the level bands
with their colours, and ``heatmap``: which scale runs down the rows and which across the
columns, in which order, the captions, and which register columns feed each map. The
editor (``frontend/src/risk.ts``) reads the same JSON and follows the same rules; the PDF,
the Word file and the past-version page draw what :func:`heat_maps` returns. A browser
test compares all four cell by cell (tests/browser/test_heatmap_agreement.py).

The rules:

- A rating is a likelihood and a severity that are both points of their scale (matched by
  the stored value, ``"2"``; a whole number ``2`` is the same value). Anything else is
  *unrated*: an unrated risk is never placed in a cell, it is listed as "not yet rated".
- The level of a score is the band that contains it; a score between two bands takes the
  lower band; below every band, no level.
- A cell's level is its own score's: an override changes a risk's level, not the map.
- An override applies only with a reason (dpia-model.md: "a manual override needs a
  reason"); without one the computed level stands.
- For the gates (residual high risk, the outcome's overall residual risk) a risk whose
  residual is not rated yet counts at its level before measures: a risk nobody has
  reassessed has not been reduced. The maps do not do this: they show what was rated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from server.domain.templates import load_template

OVERRIDE_LEVEL = "override_level"
OVERRIDE_REASON = "override_reason"
INHERENT = "inherent"
RESIDUAL = "residual"


@dataclass(frozen=True, slots=True)
class ScalePoint:
    """One point of the likelihood or severity scale: stored ``value``, ``score``, ``label``."""

    value: str
    score: int
    label: str


@dataclass(frozen=True, slots=True)
class Level:
    id: str
    label: str
    min: int
    max: int
    color: str
    text_color: str


@dataclass(frozen=True, slots=True)
class Rating:
    likelihood: ScalePoint
    severity: ScalePoint
    score: int
    level: Level | None


@dataclass(frozen=True, slots=True)
class Assessment:
    """A risk row rated before and after measures."""

    inherent: Rating | None
    level: Level | None  # the override when it has a reason, else the inherent rating's
    overridden: bool
    override_without_reason: bool
    residual: Rating | None

    @property
    def residual_or_inherent(self) -> Level | None:
        """The level the gates count: the residual rating's, else the level before measures."""
        return self.residual.level if self.residual is not None else self.level


@dataclass(frozen=True, slots=True)
class HeatCell:
    likelihood: ScalePoint
    severity: ScalePoint
    level: Level | None
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HeatMap:
    """One map as drawn: ``grid[row][column]`` in display order, and who is not on it."""

    id: str
    caption: str
    corner: str
    unrated_label: str
    row_scale: str
    column_scale: str
    rows: tuple[ScalePoint, ...]
    columns: tuple[ScalePoint, ...]
    grid: tuple[tuple[HeatCell, ...], ...]
    unrated: tuple[str, ...]

    def cells(self) -> Iterator[HeatCell]:
        for row in self.grid:
            yield from row

    @property
    def placed(self) -> int:
        return sum(len(cell.refs) for cell in self.cells())

    def describe(self, cell: HeatCell) -> str:
        """What a screen reader says of a cell (the editor's ``describeCell``)."""
        if self.row_scale == "severity":
            first = f"Severity {cell.severity.label}, likelihood {cell.likelihood.label}"
        else:
            first = f"Likelihood {cell.likelihood.label}, severity {cell.severity.label}"
        level = f"{cell.level.label} risk" if cell.level else "no level"
        count = len(cell.refs)
        risks = (
            "no risks"
            if count == 0
            else f"{count} {'risk' if count == 1 else 'risks'} ({', '.join(cell.refs)})"
        )
        return f"{first}, {level}: {risks}"


@dataclass(frozen=True, slots=True)
class MapSpec:
    id: str
    caption: str
    likelihood_column: str
    severity_column: str


@dataclass(frozen=True, slots=True)
class RiskMatrix:
    """The template's ``risk_matrix``, parsed."""

    likelihood: tuple[ScalePoint, ...]
    severity: tuple[ScalePoint, ...]
    levels: tuple[Level, ...]
    row_scale: str
    row_descending: bool
    column_scale: str
    column_descending: bool
    corner: str
    unrated_label: str
    maps: tuple[MapSpec, ...]

    @classmethod
    def from_template(cls, template_content: Mapping[str, Any]) -> RiskMatrix:
        """The template's matrix; the default template's for one without a risk register
        (a project's other step documents), so pages and exports read every kind alike."""
        raw = template_content.get("risk_matrix")
        if raw is None:
            raw = load_template().content["risk_matrix"]
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> RiskMatrix:
        def scale(name: str) -> tuple[ScalePoint, ...]:
            return tuple(
                ScalePoint(str(p["value"]), int(p["score"]), str(p["label"])) for p in raw[name]
            )

        heatmap = raw["heatmap"]
        return cls(
            likelihood=scale("likelihood"),
            severity=scale("severity"),
            levels=tuple(
                Level(
                    str(b["id"]),
                    str(b["label"]),
                    int(b["min"]),
                    int(b["max"]),
                    str(b["color"]),
                    str(b["text_color"]),
                )
                for b in raw["levels"]
            ),
            row_scale=str(heatmap["rows"]["scale"]),
            row_descending=heatmap["rows"]["order"] == "descending",
            column_scale=str(heatmap["columns"]["scale"]),
            column_descending=heatmap["columns"]["order"] == "descending",
            corner=str(heatmap["corner"]),
            unrated_label=str(heatmap["unrated"]),
            maps=tuple(
                MapSpec(str(m["id"]), str(m["caption"]), str(m["likelihood"]), str(m["severity"]))
                for m in heatmap["maps"]
            ),
        )

    # -- rating ----------------------------------------------------------------------------

    def point(self, scale: str, value: Any) -> ScalePoint | None:
        """The point of ``scale`` whose stored value is ``value``, or None."""
        key = _value_key(value)
        points = self.likelihood if scale == "likelihood" else self.severity
        return next((p for p in points if p.value == key), None)

    def level_for_score(self, score: int) -> Level | None:
        for level in self.levels:
            if level.min <= score <= level.max:
                return level
        below = [level for level in self.levels if level.max < score]
        return max(below, key=lambda level: level.max) if below else None

    def level(self, level_id: Any) -> Level | None:
        return next((level for level in self.levels if level.id == level_id), None)

    @property
    def highest(self) -> Level:
        return max(self.levels, key=lambda level: level.min)

    def rate(self, likelihood: Any, severity: Any) -> Rating | None:
        l_point = self.point("likelihood", likelihood)
        s_point = self.point("severity", severity)
        if l_point is None or s_point is None:
            return None
        score = l_point.score * s_point.score
        return Rating(l_point, s_point, score, self.level_for_score(score))

    def map_spec(self, map_id: str) -> MapSpec:
        return next(m for m in self.maps if m.id == map_id)

    def assess(self, row: Mapping[str, Any]) -> Assessment:
        inherent_spec, residual_spec = self.map_spec(INHERENT), self.map_spec(RESIDUAL)
        inherent = self.rate(
            row.get(inherent_spec.likelihood_column), row.get(inherent_spec.severity_column)
        )
        residual = self.rate(
            row.get(residual_spec.likelihood_column), row.get(residual_spec.severity_column)
        )
        override = self.level(row.get(OVERRIDE_LEVEL))
        reason = row.get(OVERRIDE_REASON)
        has_reason = isinstance(reason, str) and reason.strip() != ""
        overridden = override is not None and has_reason
        return Assessment(
            inherent=inherent,
            level=override if overridden else (inherent.level if inherent else None),
            overridden=overridden,
            override_without_reason=override is not None and not has_reason,
            residual=residual,
        )

    # -- the heat maps ---------------------------------------------------------------------

    def axis(self, scale: str, descending: bool) -> tuple[ScalePoint, ...]:
        points = self.likelihood if scale == "likelihood" else self.severity
        return tuple(sorted(points, key=lambda p: p.score, reverse=descending))

    def heat_map(self, spec: MapSpec, rows: Iterable[Mapping[str, Any]]) -> HeatMap:
        placed: dict[tuple[str, str], list[str]] = {}
        unrated: list[str] = []
        for row in rows:
            ref = risk_ref(row)
            rating = self.rate(row.get(spec.likelihood_column), row.get(spec.severity_column))
            if rating is None:
                unrated.append(ref)
            else:
                placed.setdefault((rating.likelihood.value, rating.severity.value), []).append(ref)
        row_points = self.axis(self.row_scale, self.row_descending)
        column_points = self.axis(self.column_scale, self.column_descending)

        def cell(row_point: ScalePoint, column_point: ScalePoint) -> HeatCell:
            by_scale = {self.row_scale: row_point, self.column_scale: column_point}
            l_point, s_point = by_scale["likelihood"], by_scale["severity"]
            return HeatCell(
                l_point,
                s_point,
                self.level_for_score(l_point.score * s_point.score),
                tuple(placed.get((l_point.value, s_point.value), ())),
            )

        return HeatMap(
            id=spec.id,
            caption=spec.caption,
            corner=self.corner,
            unrated_label=self.unrated_label,
            row_scale=self.row_scale,
            column_scale=self.column_scale,
            rows=row_points,
            columns=column_points,
            grid=tuple(tuple(cell(r, c) for c in column_points) for r in row_points),
            unrated=tuple(unrated),
        )

    def heat_maps(self, rows: Iterable[Mapping[str, Any]]) -> list[HeatMap]:
        """Every map of the template (before and after measures), in its order."""
        materialised = list(rows)
        return [self.heat_map(spec, materialised) for spec in self.maps]


def register_path(template_content: Mapping[str, Any]) -> tuple[str, str] | None:
    """(section, field) of the risk register: the first table with ``"heatmap": true``."""
    for section in template_content["sections"]:
        for field in section["fields"]:
            if field["kind"] == "table" and field.get("heatmap"):
                return str(section["id"]), str(field["id"])
    return None


def register_rows(
    template_content: Mapping[str, Any], content: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of the risk register in ``content`` (canonical content)."""
    path = register_path(template_content)
    if path is None:
        return []
    rows = content.get(path[0], {}).get(path[1])
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def risk_ref(row: Mapping[str, Any]) -> str:
    ref = row.get("ref")
    return str(ref) if ref else "?"


def _value_key(value: Any) -> str | None:
    """A stored scale value as the template spells it: ``"2"``; the number 2 is the same."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


# -- the gates ------------------------------------------------------------------------------


def residual_high_risks(rows: Iterable[Mapping[str, Any]], matrix: RiskMatrix) -> list[str]:
    """Refs of the risks still at the highest level after measures (see the module rules)."""
    highest = matrix.highest
    return [risk_ref(row) for row in rows if matrix.assess(row).residual_or_inherent == highest]


def residual_high_risks_of(
    template_content: Mapping[str, Any], content: Mapping[str, Any]
) -> list[str]:
    """``residual_high_risks`` of a document's risk register; none for a template without a
    register or a risk matrix (the project's other step documents, the ISA)."""
    rows = register_rows(template_content, content)
    return residual_high_risks(rows, RiskMatrix.from_template(template_content)) if rows else []


def overall_residual_level(rows: Iterable[Mapping[str, Any]], matrix: RiskMatrix) -> Level | None:
    """The outcome's "overall residual risk": the highest residual (or inherent) level."""
    levels = [matrix.assess(row).residual_or_inherent for row in rows]
    found = [level for level in levels if level is not None]
    return max(found, key=lambda level: level.min) if found else None


def counted_before_measures(rows: Iterable[Mapping[str, Any]], matrix: RiskMatrix) -> list[str]:
    """Refs of the risks the outcome counts at their level before measures, because they
    are not rated after them: said next to the overall residual risk, so that it never
    reads as a rating nobody gave."""
    found = []
    for row in rows:
        assessment = matrix.assess(row)
        if assessment.residual is None and assessment.level is not None:
            found.append(risk_ref(row))
    return found


def overall_residual_text(rows: Iterable[Mapping[str, Any]], matrix: RiskMatrix) -> str:
    """The overall residual risk as the editor and the record print it."""
    materialised = list(rows)
    level = overall_residual_level(materialised, matrix)
    if level is None:
        return "No rated risks yet"
    counted = counted_before_measures(materialised, matrix)
    if not counted:
        return level.label
    return (
        f"{level.label} (counting {', '.join(counted)} at the level before measures, "
        "not yet rated after them)"
    )


def residual_high_accepted(rows: Iterable[Mapping[str, Any]], matrix: RiskMatrix) -> bool:
    """The outcome's "residual high risk accepted": a risk at the highest level after
    measures whose effect or status is "accepted"."""
    highest = matrix.highest
    return any(
        matrix.assess(row).residual_or_inherent == highest
        and (row.get("effect") == "accepted" or row.get("status") == "accepted")
        for row in rows
    )
