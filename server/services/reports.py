"""PDF (reportlab) and Word (python-docx) renderings of a DPIA's record.

Both show the same things in the same order: the DPIA's identity and status, every section's
fields, the risk heat map before and after measures, the action plan, and the step-7
sign-off table, where a stale sign-off is marked STALE (its content changed after it was
signed) and superseded or revoked ones stay visible.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from docx import Document as WordDocument
from docx.enum.text import WD_COLOR_INDEX
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from server.domain.content import plain_text
from server.domain.risk import HeatMap, RiskMatrix
from server.domain.workflow import SignOffState
from server.services.exports import Record
from server.services.signoffs import SignOff

STALE_RED = colors.HexColor("#b3261e")


def signoff_rows(record: Record) -> list[list[str]]:
    rows = []
    for s in record.signoffs:
        detail = "; ".join(
            part
            for part in (
                f"Conditions: {s.conditions}" if s.conditions else "",
                f"Reasons: {s.reasons}" if s.reasons else "",
            )
            if part
        )
        rows.append(
            [
                s.kind.label + ("" if s.kind.fixed_target else f" ({s.target})"),
                f"{s.signer_name}, {s.signer_role}, {s.signer_organisation}",
                s.decision.replace("_", " ") + (f". {detail}" if detail else ""),
                f"{s.created_at:%d %b %Y %H:%M} UTC, version {s.seq}, sha256 {s.content_hash[:12]}",
                _state_label(s),
            ]
        )
    return rows


def _parties(record: Record) -> str:
    return ", ".join(f"{name} ({role.replace('_', ' ')})" for name, role in record.parties)


def _state_label(signoff: SignOff) -> str:
    if signoff.state is SignOffState.STALE:
        return "STALE: changed since signed"
    return signoff.state.value


# -- PDF ------------------------------------------------------------------------------------


def pdf(record: Record) -> bytes:
    out = io.BytesIO()
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["BodyText"], fontSize=8, leading=10)
    matrix = RiskMatrix.from_template(record.template.content)
    story: list[Any] = [
        Paragraph(escape(f"{record.dpia_id}: {record.title}"), styles["Title"]),
        Paragraph(
            escape(
                f"Status: {record.status.label}. Lead organisation: {record.lead_organisation}. "
                f"Parties: {_parties(record)}. "
                f"Document version {record.seq}, exported {record.exported_at:%d %b %Y %H:%M} UTC."
            ),
            styles["BodyText"],
        ),
        Spacer(1, 6 * mm),
        Paragraph("Risk heat map", styles["Heading2"]),
        Table(
            [[_heat_map(matrix, map_, small) for map_ in matrix.heat_maps(record.risks)]],
            colWidths=[87 * mm, 87 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        ),
        Spacer(1, 4 * mm),
        Paragraph("Action plan", styles["Heading2"]),
        _table(
            [["Ref", "Measure", "Type", "Status", "Owner", "Due", "Risks"]]
            + [
                [
                    plain_text(m.get(k))
                    for k in ("ref", "title", "type", "status", "owner", "due", "risks")
                ]
                for m in record.measures
            ],
            small,
        ),
        Spacer(1, 4 * mm),
        Paragraph("Step 7: sign off and record outcomes", styles["Heading2"]),
        _table(
            [["What", "Signed by", "Decision", "When and what", "State"], *signoff_rows(record)],
            small,
            stale_rows=[
                i + 1 for i, s in enumerate(record.signoffs) if s.state is SignOffState.STALE
            ],
        ),
    ]
    for section in record.template.sections:
        story.append(Paragraph(escape(section["title"]), styles["Heading2"]))
        for field in section["fields"]:
            value = record.content[section["id"]].get(field["id"])
            text = plain_text(value) or "—"
            story.append(
                KeepTogether(
                    [
                        Paragraph(f"<b>{escape(field['label'])}</b>", styles["BodyText"]),
                        Paragraph(escape(text).replace("\n", "<br/>"), small),
                    ]
                )
            )
    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"{record.dpia_id} {record.title}",
        author="OpenDPIA",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
    )
    document.build(story)
    return out.getvalue()


def _table(
    rows: list[list[str]], style: ParagraphStyle, stale_rows: list[int] | None = None
) -> Table:
    if len(rows) == 1:
        rows = [*rows, ["none"] + [""] * (len(rows[0]) - 1)]
    cells = [[Paragraph(escape(c), style) for c in row] for row in rows]
    table = Table(cells, repeatRows=1)
    commands: list[Any] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    for index in stale_rows or []:
        commands.append(("BACKGROUND", (0, index), (-1, index), colors.HexColor("#fde7e4")))
        commands.append(("BOX", (0, index), (-1, index), 1.2, STALE_RED))
    table.setStyle(TableStyle(commands))
    return table


def _heat_map(matrix: RiskMatrix, map_: HeatMap, style: ParagraphStyle) -> Table:
    """One heat map as the template defines it (server/domain/risk.py draws the grid)."""
    centred = ParagraphStyle("heat-cell", parent=style, alignment=TA_CENTER)
    header = [Paragraph(escape(map_.corner), style)] + [
        Paragraph(f"<b>{escape(point.label)}</b>", centred) for point in map_.columns
    ]
    rows: list[list[Any]] = [header]
    commands: list[Any] = [
        ("GRID", (0, 0), (-1, -1), 1.5, colors.white),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    for r, (point, cells) in enumerate(zip(map_.rows, map_.grid, strict=True), start=1):
        row: list[Any] = [Paragraph(f"<b>{escape(point.label)}</b>", style)]
        for c, cell in enumerate(cells, start=1):
            ink = cell.level.text_color if cell.level else "#000000"
            label = escape(cell.level.label) if cell.level else ""
            refs = escape(", ".join(cell.refs))
            row.append(
                Paragraph(
                    f'<font color="{ink}" size="7">{label}</font><br/>'
                    f'<font color="{ink}"><b>{refs}</b></font>',
                    centred,
                )
            )
            if cell.level:
                commands.append(("BACKGROUND", (c, r), (c, r), colors.HexColor(cell.level.color)))
        rows.append(row)
    grid = Table(
        rows,
        colWidths=[24 * mm] + [19 * mm] * len(map_.columns),
        rowHeights=[None] + [14 * mm] * len(map_.rows),
    )
    grid.setStyle(TableStyle(commands))
    parts: list[list[Any]] = [[Paragraph(f"<b>{escape(map_.caption)}</b>", style)], [grid]]
    if map_.unrated:
        parts.append([Paragraph(escape(f"{map_.unrated_label}: {', '.join(map_.unrated)}"), style)])
    return Table(parts)


# -- Word -----------------------------------------------------------------------------------


def docx(record: Record) -> bytes:
    document = WordDocument()
    document.core_properties.title = f"{record.dpia_id} {record.title}"
    document.add_heading(f"{record.dpia_id}: {record.title}", level=0)
    document.add_paragraph(
        f"Status: {record.status.label}. Lead organisation: {record.lead_organisation}. "
        f"Document version {record.seq}, exported {record.exported_at:%d %b %Y %H:%M} UTC."
    )
    matrix = RiskMatrix.from_template(record.template.content)
    document.add_heading("Risk heat map", level=2)
    for map_ in matrix.heat_maps(record.risks):
        _word_heat_map(document, map_)
    document.add_heading("Action plan", level=2)
    _word_table(
        document,
        ["Ref", "Measure", "Type", "Status", "Owner", "Due", "Risks"],
        [
            [
                plain_text(m.get(k))
                for k in ("ref", "title", "type", "status", "owner", "due", "risks")
            ]
            for m in record.measures
        ],
    )
    document.add_heading("Step 7: sign off and record outcomes", level=2)
    table = _word_table(
        document, ["What", "Signed by", "Decision", "When and what", "State"], signoff_rows(record)
    )
    for index, signoff in enumerate(record.signoffs, start=1):
        if signoff.state is SignOffState.STALE:
            for run in table.rows[index].cells[4].paragraphs[0].runs:
                run.bold = True
                run.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
                run.font.highlight_color = WD_COLOR_INDEX.YELLOW
    for section in record.template.sections:
        document.add_heading(section["title"], level=1)
        for field in section["fields"]:
            paragraph = document.add_paragraph()
            label = paragraph.add_run(field["label"])
            label.bold = True
            value = plain_text(record.content[section["id"]].get(field["id"])) or "—"
            body = document.add_paragraph(value)
            for run in body.runs:
                run.font.size = Pt(10)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _word_heat_map(document: Any, map_: HeatMap) -> None:
    document.add_heading(map_.caption, level=3)
    table = document.add_table(rows=len(map_.rows) + 1, cols=len(map_.columns) + 1)
    table.style = "Table Grid"
    table.cell(0, 0).text = map_.corner
    for c, point in enumerate(map_.columns, start=1):
        table.cell(0, c).paragraphs[0].add_run(point.label).bold = True
    for r, (point, cells) in enumerate(zip(map_.rows, map_.grid, strict=True), start=1):
        table.cell(r, 0).paragraphs[0].add_run(point.label).bold = True
        for c, heat in enumerate(cells, start=1):
            cell = table.cell(r, c)
            level, refs = cell.paragraphs[0], cell.add_paragraph()
            level.add_run(heat.level.label if heat.level else "").font.size = Pt(8)
            refs.add_run(", ".join(heat.refs)).bold = True
            if heat.level:
                _shade(cell, heat.level.color)
                for paragraph in (level, refs):
                    for run in paragraph.runs:
                        run.font.color.rgb = RGBColor.from_string(heat.level.text_color[1:].upper())
    if map_.unrated:
        document.add_paragraph(f"{map_.unrated_label}: {', '.join(map_.unrated)}")


def _shade(cell: Any, colour: str) -> None:
    """Fill a Word table cell (python-docx has no API for it: ``w:shd`` in the cell's
    properties)."""
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), colour.lstrip("#").upper())
    cell._tc.get_or_add_tcPr().append(shading)


def _word_table(document: Any, header: list[str], rows: list[list[str]]) -> Any:
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    return table
