"""Read a heat map back out of each place that draws one: the editor's or the past-version
page's DOM, the PDF (text positions and pixels; the PDF prints the page's markup,
server/services/templates/record_macros.html) and the Word file (table cells and shading).

Every reader returns the same shape, :class:`Drawn`, built only from what a person sees:
the row and column header labels, and in each cell the level's label, the refs and the
fill colour. Which likelihood and severity a cell stands for is worked out from its row and
column headers, never from a data attribute, so a rendering that mislabels its axes or
puts a risk in the wrong cell reads back differently.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from server.domain.risk import RiskMatrix

CellKey = tuple[str, str]  # (likelihood value, severity value)


@dataclass(frozen=True)
class Cell:
    level: str  # the level's label as shown ("High"), "" for none
    refs: tuple[str, ...]
    colour: str  # "#rrggbb", lower case


@dataclass(frozen=True)
class DrawnMap:
    caption: str
    rows: tuple[str, ...]  # row header labels, top to bottom
    columns: tuple[str, ...]  # column header labels, left to right
    cells: dict[CellKey, Cell]
    unrated: tuple[str, ...]


Drawn = dict[str, DrawnMap]  # map id ("inherent", "residual") → what was drawn


def _refs(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\b[A-Z]\d+\b", text))


def _key(matrix: RiskMatrix, row_label: str, column_label: str) -> CellKey:
    """(likelihood value, severity value) of the cell under these two header labels."""
    by_scale = {
        matrix.row_scale: _value_of(matrix, matrix.row_scale, row_label),
        matrix.column_scale: _value_of(matrix, matrix.column_scale, column_label),
    }
    return by_scale["likelihood"], by_scale["severity"]


def _value_of(matrix: RiskMatrix, scale: str, label: str) -> str:
    points = matrix.likelihood if scale == "likelihood" else matrix.severity
    (point,) = [p for p in points if p.label == label]
    return point.value


def _map_id(matrix: RiskMatrix, caption: str) -> str:
    (spec,) = [m for m in matrix.maps if caption.strip().startswith(m.caption)]
    return spec.id


# -- the browser: the editor and the past-version page ---------------------------------------

DOM_READER = """() => [...document.querySelectorAll('table.heatmap')].map((table) => ({
    id: table.dataset.heatmap,
    caption: table.querySelector('caption').textContent,
    dataUnrated: table.dataset.unrated,
    columns: [...table.querySelectorAll('thead th')].slice(1).map((th) => th.textContent.trim()),
    rows: [...table.querySelectorAll('tbody tr')].map((tr) => ({
        label: tr.querySelector('th').textContent.trim(),
        cells: [...tr.querySelectorAll('td')].map((td) => ({
            level: td.querySelector('.heatmap-level').textContent.trim(),
            refs: td.querySelector('.heatmap-refs').textContent.trim(),
            colour: getComputedStyle(td).backgroundColor,
            data: {...td.dataset},
        })),
    })),
}))"""


def _css_colour(value: str) -> str:
    r, g, b = (int(n) for n in re.findall(r"\d+", value)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


async def read_dom(page: Any, matrix: RiskMatrix) -> Drawn:
    """The heat maps on a page (the editor's or a past version's) as a person sees them;
    the data attributes that tests and tools read must say the same."""
    drawn: Drawn = {}
    for table in await page.evaluate(DOM_READER):
        cells: dict[CellKey, Cell] = {}
        for row in table["rows"]:
            for column_label, cell in zip(table["columns"], row["cells"], strict=True):
                key = _key(matrix, row["label"], column_label)
                seen = Cell(cell["level"], _refs(cell["refs"]), _css_colour(cell["colour"]))
                data = cell["data"]
                assert (data["likelihood"], data["severity"]) == key, (table["id"], key, data)
                assert tuple(data["refs"].split()) == seen.refs, (table["id"], key, data)
                cells[key] = seen
        caption = table["caption"]
        unrated = _refs(caption.partition(":")[2]) if ":" in caption else ()
        assert tuple(table["dataUnrated"].split()) == unrated, table
        assert _map_id(matrix, caption) == table["id"]
        drawn[table["id"]] = DrawnMap(
            caption.split(" — ")[0].strip(),
            tuple(r["label"] for r in table["rows"]),
            tuple(table["columns"]),
            cells,
            unrated,
        )
    return drawn


# -- Word -----------------------------------------------------------------------------------


def read_docx(data: bytes, matrix: RiskMatrix) -> Drawn:
    """Each heat-map table (its top-left cell is the template's corner text), the heading
    before it (the caption) and the "Not yet rated" paragraph after it."""
    import docx
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks = list(document.iter_inner_content())
    drawn: Drawn = {}
    for index, block in enumerate(blocks):
        if not isinstance(block, Table) or block.cell(0, 0).text != matrix.corner:
            continue
        heading = blocks[index - 1]
        assert isinstance(heading, Paragraph) and heading.style is not None
        assert heading.style.name.startswith("Heading"), heading.style.name
        after = blocks[index + 1] if index + 1 < len(blocks) else None
        unrated: tuple[str, ...] = ()
        if isinstance(after, Paragraph) and after.text.startswith(matrix.unrated_label + ":"):
            unrated = _refs(after.text.partition(":")[2])
        columns = tuple(c.text.strip() for c in block.rows[0].cells[1:])
        rows = tuple(r.cells[0].text.strip() for r in block.rows[1:])
        cells: dict[CellKey, Cell] = {}
        for row in block.rows[1:]:
            for column_label, cell in zip(columns, row.cells[1:], strict=True):
                shading = cell._tc.tcPr.find(qn("w:shd")) if cell._tc.tcPr is not None else None
                fill = shading.get(qn("w:fill")) if shading is not None else "ffffff"
                level_text, _, refs_text = cell.text.partition("\n")
                cells[_key(matrix, row.cells[0].text.strip(), column_label)] = Cell(
                    level_text.strip(), _refs(refs_text), f"#{fill.lower()}"
                )
        drawn[_map_id(matrix, heading.text)] = DrawnMap(heading.text, rows, columns, cells, unrated)
    return drawn


# -- PDF ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    left: float
    bottom: float
    right: float
    top: float

    @property
    def x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def y(self) -> float:
        return (self.bottom + self.top) / 2


def _find(textpage: Any, text: str) -> list[_Box]:
    searcher = textpage.search(text, match_case=True, match_whole_word=True)
    found = []
    while (hit := searcher.get_next()) is not None:
        start, count = hit
        first, last = textpage.get_charbox(start), textpage.get_charbox(start + count - 1)
        found.append(_Box(first[0], min(first[1], last[1]), last[2], max(first[3], last[3])))
    return found


def read_pdf(data: bytes, matrix: RiskMatrix, scale: float = 3) -> tuple[Drawn, Any]:
    """The heat maps of the page that has them, read from the positions of the text drawn
    (captions, axis labels, what each cell holds) and the colour of each cell's pixels.
    Also the rendered page, to keep as an artefact."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    for index in range(len(pdf)):
        textpage = pdf[index].get_textpage()
        captions = {spec.id: _find(textpage, spec.caption) for spec in matrix.maps}
        if all(captions.values()):
            page = pdf[index]
            break
    else:
        raise AssertionError("no page of the PDF has every heat map's caption")
    height = page.get_height()
    image = page.render(scale=scale).to_pil().convert("RGB")
    rows_points = matrix.axis(matrix.row_scale, matrix.row_descending)
    column_points = matrix.axis(matrix.column_scale, matrix.column_descending)
    drawn: Drawn = {}
    for spec in matrix.maps:
        caption = captions[spec.id][0]

        def near(box: _Box, caption: _Box = caption) -> bool:
            # below this map's caption, within its width and height
            return (
                caption.left - 5 <= box.left <= caption.left + 235
                and caption.top - 180 <= box.top <= caption.bottom
            )

        columns = [
            (point.label, [b for b in _find(textpage, point.label) if near(b)])
            for point in column_points
        ]
        rows = [
            (point.label, [b for b in _find(textpage, point.label) if near(b)])
            for point in rows_points
        ]
        for label, boxes in (*columns, *rows):
            assert boxes, f"{spec.caption}: axis label {label!r} not found"
        # column headers share the top line; row headers the left edge
        column_boxes = [(label, max(boxes, key=lambda b: b.top)) for label, boxes in columns]
        row_boxes = [(label, min(boxes, key=lambda b: b.left)) for label, boxes in rows]
        xs = [box.x for _, box in column_boxes]
        ys = [box.y for _, box in row_boxes]
        width = (xs[-1] - xs[0]) / (len(xs) - 1)
        step = (ys[0] - ys[-1]) / (len(ys) - 1)
        cells: dict[CellKey, Cell] = {}
        for row_label, y in zip((label for label, _ in row_boxes), ys, strict=True):
            for column_label, x in zip((label for label, _ in column_boxes), xs, strict=True):
                text = textpage.get_text_bounded(
                    x - width / 2 + 1, y - step / 2 + 1, x + width / 2 - 1, y + step / 2 - 1
                )
                lines = [line.strip() for line in text.splitlines() if line.strip()]
                level = next((ln for ln in lines if not _refs(ln)), "")
                refs = tuple(r for ln in lines for r in _refs(ln))
                # a pixel just inside the cell's top-left corner: fill, not text
                px = (x - width / 2 + 3) * scale
                py = (height - (y + step / 2 - 3)) * scale
                r, g, b = image.getpixel((int(px), int(py)))
                cells[_key(matrix, row_label, column_label)] = Cell(
                    level, refs, f"#{r:02x}{g:02x}{b:02x}"
                )
        # The caption says which risks are not rated ("Before measures — Not yet rated:
        # R3"), wrapped over as many lines as it needs above the column headers.
        header_top = max(box.top for _, box in column_boxes)
        above = textpage.get_text_bounded(
            caption.left - 5, header_top + 1, caption.left + 235, caption.top + 2
        )
        found = re.search(re.escape(matrix.unrated_label) + r":(.*)", above, re.DOTALL)
        drawn[spec.id] = DrawnMap(
            spec.caption,
            tuple(label for label, _ in row_boxes),
            tuple(label for label, _ in column_boxes),
            cells,
            _refs(found.group(1)) if found else (),
        )
    return drawn, image
