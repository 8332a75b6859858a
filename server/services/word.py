"""The Word file of a document's record (a DPIA, an ISA, any step of a project; python-docx),
showing what the PDF shows
(server/services/reports.py) in Word's own structure: the Title style and Heading 1 to 3
(the navigation pane and screen readers list them), tables whose first row is marked as
their header row (``w:tblHeader``: repeated on each page and announced), the language
(en-GB) and the title in the document's properties, and a running header and "Page X of
Y" footer made of Word fields.
"""

from __future__ import annotations

import io
from typing import Any

from docx import Document as WordDocument
from docx.enum.text import WD_COLOR_INDEX
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor

from server.domain.projects import DocumentKind
from server.domain.readable import Block, Grid, Text, read_content, register_summary
from server.domain.risk import HeatMap, RiskMatrix
from server.services.exports import Record
from server.services.reports import (
    LANGUAGE,
    NOT_MATCHING,
    STALE_STATE,
    SignOffCard,
    action_plan,
    cover_facts,
    endorsement_cards,
    has_risks,
    has_signature_blocks,
    kind_label,
    parties,
    signature_blocks,
    signoff_cards,
    title_line,
)

HEADER_BLUE = "#e8eef5"
_KEYWORD = {DocumentKind.DPIA: "DPIA", DocumentKind.ISA: "ISA"}
STALE_RED = RGBColor(0xB3, 0x26, 0x1E)


def render(record: Record) -> bytes:
    document = WordDocument()
    _properties(document, record)
    _running_header_and_footer(document, record)
    document.add_heading(record.title, level=0)
    document.add_paragraph(f"{kind_label(record)} {record.dpia_id} · {record.status.label}")
    _pairs(document, cover_facts(record))
    document.add_heading("Parties", level=1)
    _grid(document, parties(record), empty="No party recorded.")

    if has_signature_blocks(record):
        document.add_heading("Signatures", level=1)
        blocks = signature_blocks(record)
        if not blocks:
            document.add_paragraph("No signing party recorded.")
        for block in blocks:
            document.add_heading(f"{block.organisation} ({block.role})", level=2)
            for line in block.lines:
                document.add_heading(line.title, level=3)
                _mark_stale(_pairs(document, line.pairs))
    endorsements = endorsement_cards(record)
    if endorsements:
        document.add_heading("Endorsement", level=1)
        _signoffs(document, endorsements)

    document.add_heading("Sign-offs", level=1)
    cards = signoff_cards(record)
    if not cards:
        document.add_paragraph("No sign-off recorded yet.")
    _signoffs(document, cards)

    if has_risks(record):
        matrix = RiskMatrix.from_template(record.template.content)
        document.add_heading("Risk heat maps", level=1)
        for map_ in matrix.heat_maps(record.risks):
            _heat_map(document, map_)
        summary = register_summary(record.template, record.content)
        if summary is not None:
            document.add_heading("Risk register", level=1)
            _grid(document, summary)
        plan = action_plan(record)
        if plan is not None:
            document.add_heading("Action plan", level=1)
            _grid(document, plan)

    for section in read_content(record.template, record.content):
        document.add_heading(section.title, level=1)
        for field in section.fields:
            document.add_heading(field.label, level=2)
            _block(document, field.block)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _signoffs(document: Any, cards: list[SignOffCard]) -> None:
    for signoff in cards:
        document.add_heading(signoff.card.title, level=2)
        _mark_stale(_pairs(document, signoff.card.pairs))


def _mark_stale(table: Any) -> None:
    """What no longer holds stands out: bold red on yellow."""
    for row in table.rows:
        if row.cells[1].text in (STALE_STATE, NOT_MATCHING):
            for run in row.cells[1].paragraphs[0].runs:
                run.bold = True
                run.font.color.rgb = STALE_RED
                run.font.highlight_color = WD_COLOR_INDEX.YELLOW


def _properties(document: Any, record: Record) -> None:
    """Title, subject, author and language in the file's properties, and en-GB as the
    language of its text (Word's spelling and screen readers' voices follow it)."""
    properties = document.core_properties
    properties.title = title_line(record)
    properties.subject = kind_label(record)
    properties.author = record.lead_organisation
    properties.language = LANGUAGE
    keyword = _KEYWORD.get(record.kind, kind_label(record))
    properties.keywords = f"{keyword}; {record.status.label}; version {record.seq}"
    languages = document.styles.element.findall(
        f"{qn('w:docDefaults')}/{qn('w:rPrDefault')}/{qn('w:rPr')}/{qn('w:lang')}"
    )
    for language in languages:  # python-docx's template says en-US
        language.set(qn("w:val"), LANGUAGE)


def _running_header_and_footer(document: Any, record: Record) -> None:
    section = document.sections[0]
    header = section.header.paragraphs[0]
    header.text = f"{record.title} · {record.status.label}"
    for run in header.runs:
        run.font.size = Pt(8)
    footer = section.footer.paragraphs[0]
    footer.add_run(f"{record.dpia_id} · Page ")
    _field(footer, "PAGE")
    footer.add_run(" of ")
    _field(footer, "NUMPAGES")
    for run in footer.runs:
        run.font.size = Pt(8)


def _field(paragraph: Any, code: str) -> None:
    """A Word field (PAGE, NUMPAGES) that Word fills in when it lays the pages out."""
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, f" {code} "), ("separate", None)):
        if kind is None:
            instruction = OxmlElement("w:instrText")
            instruction.set(qn("xml:space"), "preserve")
            instruction.text = text
            run._r.append(instruction)
        else:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)
    paragraph.add_run("1")  # shown until Word updates the field
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    paragraph.add_run()._r.append(end)


def _block(document: Any, block: Block) -> None:
    if isinstance(block, Text):
        for line in block.lines:
            for run in document.add_paragraph(line).runs:
                run.font.size = Pt(10)
    elif isinstance(block, Grid):
        _grid(document, block)
    else:
        for card in block.cards:
            document.add_heading(card.title, level=3)
            _pairs(document, card.pairs)


def _pairs(document: Any, pairs: tuple[tuple[str, str], ...]) -> Any:
    """Label and value rows, the label shaded and bold as a row header."""
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in pairs:
        cells = table.add_row().cells
        cells[0].paragraphs[0].add_run(label).bold = True
        _shade(cells[0], HEADER_BLUE)
        cells[1].text = value
    return table


def _grid(document: Any, grid: Grid, empty: str = "None recorded") -> Any:
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
        merged.text = empty
    return table


def _repeat_header(row: Any) -> None:
    """Mark a table's first row as its header (Word repeats it on each page, and screen
    readers announce it)."""
    marker = OxmlElement("w:tblHeader")
    marker.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(marker)


def _heat_map(document: Any, map_: HeatMap) -> None:
    """One heat map as the template defines it (server/domain/risk.py draws the grid)."""
    document.add_heading(map_.caption, level=2)
    table = document.add_table(rows=len(map_.rows) + 1, cols=len(map_.columns) + 1)
    table.style = "Table Grid"
    table.cell(0, 0).text = map_.corner
    for c, point in enumerate(map_.columns, start=1):
        table.cell(0, c).paragraphs[0].add_run(point.label).bold = True
    _repeat_header(table.rows[0])
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
