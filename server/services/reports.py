"""PDF (reportlab) and Word (python-docx) renderings of a DPIA's record.

Both show the same things in the same order: the DPIA's identity and status, the risk heat
maps before and after measures (the grids of server/domain/risk.py), the risk register and
the action plan as tables, the step-7 sign-off table, where a stale sign-off is marked
STALE (its content changed after it was signed) and superseded or revoked ones stay
visible, then every section's fields as server/domain/readable.py reads them: labels, never
stored codes.
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

from server.domain.access import Role
from server.domain.dpias import PartyRole
from server.domain.readable import (
    Block,
    Cards,
    Grid,
    Text,
    column_cells,
    long_time,
    read_content,
    register_summary,
    target_label,
)
from server.domain.risk import HeatMap, RiskMatrix
from server.domain.workflow import Decision, SignOffState
from server.services.exports import Record
from server.services.signoffs import SignOff

STALE_RED = colors.HexColor("#b3261e")
HEADER_BLUE = "#e8eef5"
# The action plan's columns, in the order an IG team reads them.
ACTION_PLAN = ("title", "type", "status", "owner", "due", "risks")
SIGNOFF_HEADER = ["What", "Signed by", "Decision", "When and what", "State"]


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
        what = s.kind.label + (
            ""
            if s.kind.fixed_target
            else f": {target_label(record.template, record.content, s.target)}"
        )
        rows.append(
            [
                what,
                f"{s.signer_name}, {_role(s.signer_role)}, {s.signer_organisation}",
                _decision(s.decision) + (f". {detail}" if detail else ""),
                f"{long_time(s.created_at)}, version {s.seq}, sha256 {s.content_hash[:12]}",
                _state_label(s),
            ]
        )
    return rows


def _role(value: str) -> str:
    try:
        return Role(value).label
    except ValueError:
        return value


def _decision(value: str) -> str:
    try:
        return Decision(value).label
    except ValueError:
        return value


def _parties(record: Record) -> str:
    def label(role: str) -> str:
        try:
            return PartyRole(role).label.lower()
        except ValueError:
            return role

    return ", ".join(f"{name} ({label(role)})" for name, role in record.parties)


def _state_label(signoff: SignOff) -> str:
    if signoff.state is SignOffState.STALE:
        return "STALE: changed since signed"
    return signoff.state.label


def _cover(record: Record) -> list[str]:
    return [
        f"Status: {record.status.label}. Lead organisation: {record.lead_organisation}.",
        f"Parties: {_parties(record) or 'none recorded'}.",
        f"Document version {record.seq}, exported {long_time(record.exported_at)}.",
    ]


def _action_plan(record: Record) -> Grid:
    header, rows = column_cells(record.template, record.content, "measures.plan", ACTION_PLAN)
    return Grid(header, tuple(rows))


# -- PDF ------------------------------------------------------------------------------------


class _Pdf:
    """The PDF's styles and the flowables of each kind of block."""

    def __init__(self) -> None:
        styles = getSampleStyleSheet()
        self.title = styles["Title"]
        self.heading = styles["Heading2"]
        self.subheading = ParagraphStyle(
            "field",
            parent=styles["BodyText"],
            fontName="Helvetica-Bold",
            fontSize=10,
            leading=12,
            spaceBefore=8,
            spaceAfter=2,
        )
        self.body = styles["BodyText"]
        self.small = ParagraphStyle("small", parent=self.body, fontSize=9, leading=11)
        self.strong = ParagraphStyle("strong", parent=self.small, fontName="Helvetica-Bold")
        self.tiny = ParagraphStyle("tiny", parent=self.body, fontSize=8, leading=10)
        self.centred = ParagraphStyle("centred", parent=self.tiny, alignment=TA_CENTER)
        self.card_title = ParagraphStyle(
            "card-title",
            parent=self.body,
            fontName="Helvetica-Bold",
            spaceBefore=6,
            spaceAfter=3,
            keepWithNext=1,
        )

    def para(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style or self.small)

    def grid(
        self,
        grid: Grid,
        stale_rows: list[int] | None = None,
        widths: list[float] | None = None,
    ) -> Table:
        rows = [list(grid.header), *(list(r) for r in grid.rows)]
        commands: list[Any] = [
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(HEADER_BLUE)),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if not grid.rows:  # one cell across the table says so
            rows.append(["None recorded"] + [""] * (len(grid.header) - 1))
            commands.append(("SPAN", (0, 1), (-1, 1)))
        cells = [
            [self.para(c, self.strong if i == 0 else self.small) for c in row]
            for i, row in enumerate(rows)
        ]
        table = Table(cells, repeatRows=1, colWidths=widths)
        for index in stale_rows or []:
            commands.append(("BACKGROUND", (0, index), (-1, index), colors.HexColor("#fde7e4")))
            commands.append(("BOX", (0, index), (-1, index), 1.2, STALE_RED))
        table.setStyle(TableStyle(commands))
        return table

    def card(self, title: str, pairs: tuple[tuple[str, str], ...]) -> list[Any]:
        table = Table(
            [[self.para(label, self.strong), self.para(value)] for label, value in pairs],
            colWidths=[55 * mm, 119 * mm],
        )
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (0, -1), colors.HexColor(HEADER_BLUE)),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return [self.para(title, self.card_title), table]

    def block(self, block: Block) -> list[Any]:
        if isinstance(block, Text):
            return [self.para(line) for line in block.lines]
        if isinstance(block, Grid):
            return [self.grid(block)]
        assert isinstance(block, Cards)
        return [f for card in block.cards for f in self.card(card.title, card.pairs)]

    def heat_map(self, map_: HeatMap) -> Table:
        """One heat map as the template defines it (server/domain/risk.py draws the grid)."""
        header = [self.para(map_.corner, self.tiny)] + [
            Paragraph(f"<b>{escape(point.label)}</b>", self.centred) for point in map_.columns
        ]
        rows: list[list[Any]] = [header]
        commands: list[Any] = [
            ("GRID", (0, 0), (-1, -1), 1.5, colors.white),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
        for r, (point, cells) in enumerate(zip(map_.rows, map_.grid, strict=True), start=1):
            row: list[Any] = [Paragraph(f"<b>{escape(point.label)}</b>", self.tiny)]
            for c, cell in enumerate(cells, start=1):
                ink = cell.level.text_color if cell.level else "#000000"
                label = escape(cell.level.label) if cell.level else ""
                refs = escape(", ".join(cell.refs))
                row.append(
                    Paragraph(
                        f'<font color="{ink}" size="7">{label}</font><br/>'
                        f'<font color="{ink}"><b>{refs}</b></font>',
                        self.centred,
                    )
                )
                if cell.level:
                    commands.append(
                        ("BACKGROUND", (c, r), (c, r), colors.HexColor(cell.level.color))
                    )
            rows.append(row)
        grid = Table(
            rows,
            colWidths=[24 * mm] + [19 * mm] * len(map_.columns),
            rowHeights=[None] + [14 * mm] * len(map_.rows),
        )
        grid.setStyle(TableStyle(commands))
        parts: list[list[Any]] = [[Paragraph(f"<b>{escape(map_.caption)}</b>", self.small)]]
        parts.append([grid])
        if map_.unrated:
            parts.append([self.para(f"{map_.unrated_label}: {', '.join(map_.unrated)}")])
        return Table(parts)


def pdf(record: Record) -> bytes:
    out = io.BytesIO()
    ui = _Pdf()
    matrix = RiskMatrix.from_template(record.template.content)
    story: list[Any] = [
        ui.para(f"{record.dpia_id}: {record.title}", ui.title),
        *(ui.para(line, ui.body) for line in _cover(record)),
        Spacer(1, 6 * mm),
        ui.para("Risk heat map", ui.heading),
        Table(
            [[ui.heat_map(map_) for map_ in matrix.heat_maps(record.risks)]],
            colWidths=[87 * mm, 87 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]),
        ),
    ]
    summary = register_summary(record.template, record.content)
    if summary is not None:
        story += [Spacer(1, 4 * mm), ui.para("Risk register", ui.heading), ui.grid(summary)]
    story += [
        Spacer(1, 4 * mm),
        ui.para("Action plan", ui.heading),
        ui.grid(_action_plan(record)),
        Spacer(1, 4 * mm),
        ui.para("Step 7: sign off and record outcomes", ui.heading),
        ui.grid(
            Grid(tuple(SIGNOFF_HEADER), tuple(tuple(r) for r in signoff_rows(record))),
            stale_rows=[
                i + 1 for i, s in enumerate(record.signoffs) if s.state is SignOffState.STALE
            ],
            widths=[m * mm for m in (40, 38, 32, 36, 28)],
        ),
    ]
    for section in read_content(record.template, record.content):
        heading = [ui.para(section.title, ui.heading)]
        for field in section.fields:
            body = ui.block(field.block)
            # a section's title stays with its first field, a label with (the start of)
            # its value: a short value whole, a list of cards with its first card
            keep = len(body) if len(body) <= 4 else 2
            story.append(
                KeepTogether([*heading, ui.para(field.label, ui.subheading), *body[:keep]])
            )
            story.extend(body[keep:])
            heading = []
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


# -- Word -----------------------------------------------------------------------------------


def docx(record: Record) -> bytes:
    document = WordDocument()
    document.core_properties.title = f"{record.dpia_id} {record.title}"
    document.add_heading(f"{record.dpia_id}: {record.title}", level=0)
    for line in _cover(record):
        document.add_paragraph(line)
    matrix = RiskMatrix.from_template(record.template.content)
    document.add_heading("Risk heat map", level=1)
    for map_ in matrix.heat_maps(record.risks):
        _word_heat_map(document, map_)
    summary = register_summary(record.template, record.content)
    if summary is not None:
        document.add_heading("Risk register", level=1)
        _word_grid(document, summary)
    document.add_heading("Action plan", level=1)
    _word_grid(document, _action_plan(record))
    document.add_heading("Step 7: sign off and record outcomes", level=1)
    table = _word_grid(
        document, Grid(tuple(SIGNOFF_HEADER), tuple(tuple(r) for r in signoff_rows(record)))
    )
    for index, signoff in enumerate(record.signoffs, start=1):
        if signoff.state is SignOffState.STALE:
            for run in table.rows[index].cells[4].paragraphs[0].runs:
                run.bold = True
                run.font.color.rgb = RGBColor(0xB3, 0x26, 0x1E)
                run.font.highlight_color = WD_COLOR_INDEX.YELLOW
    for section in read_content(record.template, record.content):
        document.add_heading(section.title, level=1)
        for field in section.fields:
            document.add_heading(field.label, level=2)
            _word_block(document, field.block)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _word_block(document: Any, block: Block) -> None:
    if isinstance(block, Text):
        for line in block.lines:
            for run in document.add_paragraph(line).runs:
                run.font.size = Pt(10)
    elif isinstance(block, Grid):
        _word_grid(document, block)
    else:
        for card in block.cards:
            document.add_heading(card.title, level=3)
            table = document.add_table(rows=0, cols=2)
            table.style = "Table Grid"
            for label, value in card.pairs:
                cells = table.add_row().cells
                cells[0].paragraphs[0].add_run(label).bold = True
                _shade(cells[0], HEADER_BLUE)
                cells[1].text = value


def _word_grid(document: Any, grid: Grid) -> Any:
    table = document.add_table(rows=1, cols=len(grid.header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, grid.header, strict=True):
        cell.paragraphs[0].add_run(text).bold = True
        _shade(cell, HEADER_BLUE)
    _repeat_header(table.rows[0])
    for row in grid.rows:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    if not grid.rows:  # one cell across the table says so
        cells = table.add_row().cells
        merged = cells[0].merge(cells[-1])
        merged.text = "None recorded"
    return table


def _repeat_header(row: Any) -> None:
    """Mark a table's first row as its header (Word repeats it on each page, and screen
    readers announce it)."""
    marker = OxmlElement("w:tblHeader")
    marker.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(marker)


def _word_heat_map(document: Any, map_: HeatMap) -> None:
    document.add_heading(map_.caption, level=2)
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
                ink = RGBColor.from_string(heat.level.text_color[1:].upper())
                for paragraph in (level, refs):
                    for run in paragraph.runs:
                        run.font.color.rgb = ink
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
