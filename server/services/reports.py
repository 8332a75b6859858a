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
from docx.shared import Pt, RGBColor
from reportlab.lib import colors
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
from server.domain.workflow import SignOffState, inherent_level
from server.services.exports import Record
from server.services.signoffs import SignOff

STALE_RED = colors.HexColor("#b3261e")


def heat_counts(record: Record, *, residual: bool) -> dict[tuple[int, int], list[str]]:
    """(likelihood, severity) → refs of the risks in that cell, before or after measures."""
    cells: dict[tuple[int, int], list[str]] = {}
    for row in record.risks:
        likelihood = row.get("residual_likelihood" if residual else "likelihood")
        severity = row.get("residual_severity" if residual else "severity")
        if residual and not (likelihood and severity):
            likelihood, severity = row.get("likelihood"), row.get("severity")
        try:
            key = (int(str(likelihood)), int(str(severity)))
        except (TypeError, ValueError):
            continue
        cells.setdefault(key, []).append(str(row.get("ref") or "?"))
    return cells


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
            [
                [
                    _heat_map(record, residual=False, style=small),
                    _heat_map(record, residual=True, style=small),
                ]
            ],
            colWidths=[85 * mm, 85 * mm],
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


def _heat_map(record: Record, *, residual: bool, style: ParagraphStyle) -> Table:
    matrix = record.template.content["risk_matrix"]
    cells = heat_counts(record, residual=residual)
    colours = {level["id"]: level["color"] for level in matrix["levels"]}
    text_colours = {level["id"]: level.get("text_color", "#000000") for level in matrix["levels"]}
    header = [Paragraph("<b>Likelihood \\ Severity</b>", style)] + [
        Paragraph(escape(s["label"]), style) for s in matrix["severity"]
    ]
    rows: list[list[Any]] = [header]
    commands: list[Any] = [("GRID", (0, 0), (-1, -1), 0.5, colors.white)]
    for r, likelihood in enumerate(reversed(matrix["likelihood"]), start=1):
        row: list[Any] = [Paragraph(escape(likelihood["label"]), style)]
        for c, severity in enumerate(matrix["severity"], start=1):
            refs = cells.get((int(likelihood["score"]), int(severity["score"])), [])
            level = (
                inherent_level(
                    {"likelihood": likelihood["score"], "severity": severity["score"]}, matrix
                )
                or "low"
            )
            ink = text_colours[level]
            row.append(
                Paragraph(f'<font color="{ink}"><b>{escape(", ".join(refs))}</b></font>', style)
            )
            commands.append(("BACKGROUND", (c, r), (c, r), colors.HexColor(colours[level])))
        rows.append(row)
    title = "After measures (residual)" if residual else "Before measures"
    table = Table(
        rows,
        colWidths=[24 * mm, 18 * mm, 18 * mm, 18 * mm],
        rowHeights=[None, 14 * mm, 14 * mm, 14 * mm],
    )
    table.setStyle(TableStyle([*commands, ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return Table([[Paragraph(f"<b>{title}</b>", style)], [table]])


# -- Word -----------------------------------------------------------------------------------


def docx(record: Record) -> bytes:
    document = WordDocument()
    document.core_properties.title = f"{record.dpia_id} {record.title}"
    document.add_heading(f"{record.dpia_id}: {record.title}", level=0)
    document.add_paragraph(
        f"Status: {record.status.label}. Lead organisation: {record.lead_organisation}. "
        f"Document version {record.seq}, exported {record.exported_at:%d %b %Y %H:%M} UTC."
    )
    matrix = record.template.content["risk_matrix"]
    for residual in (False, True):
        document.add_heading(
            "Risk heat map: " + ("after measures" if residual else "before measures"), level=2
        )
        cells = heat_counts(record, residual=residual)
        table = document.add_table(rows=4, cols=4)
        table.style = "Table Grid"
        table.cell(0, 0).text = "Likelihood \\ Severity"
        for c, severity in enumerate(matrix["severity"], start=1):
            table.cell(0, c).text = severity["label"]
        for r, likelihood in enumerate(reversed(matrix["likelihood"]), start=1):
            table.cell(r, 0).text = likelihood["label"]
            for c, severity in enumerate(matrix["severity"], start=1):
                refs = cells.get((int(likelihood["score"]), int(severity["score"])), [])
                level = inherent_level(
                    {"likelihood": likelihood["score"], "severity": severity["score"]}, matrix
                )
                table.cell(r, c).text = f"{(level or '').upper()} {', '.join(refs)}".strip()
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
