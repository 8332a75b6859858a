"""The PDF/UA-1 checks every exported record's PDF passes (docs/exports.md): pdfua's
machine-checkable rules, and :func:`ua_problems` (pikepdf) for what PDF/UA-1 asks of a
record that pdfua does not check. Used by the demo DPIA's tests
(tests/integration/test_record_files.py) and the other documents' (the ISA's).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf
import pypdfium2

from server.services.reports import LANGUAGE
from tests.support.exports import artifact

KNOWN_PDFUA_CRASH = ("UA-14-001", "is_integer")  # pdfua 0.1.3 with pikepdf 10


def _kids(element: Any) -> list[Any]:
    kids = element.get("/K")
    if kids is None:
        return []
    return list(kids) if isinstance(kids, pikepdf.Array) else [kids]


def _elements(root: Any) -> Iterator[Any]:
    """Every structure element, depth first, in reading order."""
    for kid in _kids(root):
        if isinstance(kid, pikepdf.Dictionary) and "/S" in kid:
            yield kid
            yield from _elements(kid)


def _marks_content(element: Any) -> bool:
    """Whether the element, or one below it, owns marked page content (an MCID)."""
    for kid in _kids(element):
        if isinstance(kid, int) or (isinstance(kid, pikepdf.Dictionary) and "/MCID" in kid):
            return True
        if isinstance(kid, pikepdf.Dictionary) and "/S" in kid and _marks_content(kid):
            return True
    return False


def ua_problems(data: bytes, title: str) -> list[str]:
    """What PDF/UA-1 asks of this record that the file does not do, said plainly."""
    problems: list[str] = []
    pdf = pikepdf.open(io.BytesIO(data))
    root = pdf.Root
    if not bool(root.get("/MarkInfo", {}).get("/Marked", False)):
        problems.append("/MarkInfo /Marked is not true (the file does not say it is tagged)")
    if str(root.get("/Lang", "")) != LANGUAGE:
        problems.append(f"/Lang is {str(root.get('/Lang', ''))!r}, not {LANGUAGE!r}")
    if not bool(root.get("/ViewerPreferences", {}).get("/DisplayDocTitle", False)):
        problems.append("/ViewerPreferences /DisplayDocTitle is not true")
    with pdf.open_metadata() as xmp:
        if xmp.get("pdfuaid:part") != "1":
            problems.append(f"XMP pdfuaid:part is {xmp.get('pdfuaid:part')!r}, not '1'")
        if xmp.get("dc:title") != title:
            problems.append(f"XMP dc:title is {xmp.get('dc:title')!r}, not {title!r}")
    if str(pdf.docinfo.get("/Title", "")) != title:
        problems.append("the document information's /Title is not the record's title")
    tree = root.get("/StructTreeRoot")
    if tree is None:
        return [*problems, "no /StructTreeRoot: the file has no structure"]
    if "/ParentTree" not in tree:
        problems.append("the structure tree has no /ParentTree (content is not tied to it)")
    elements = list(_elements(tree))
    roles = [str(e.S) for e in elements]
    for needed in ("/H1", "/H2", "/H3", "/P", "/Table", "/TR", "/TH", "/TD", "/Caption"):
        if needed not in roles:
            problems.append(f"no {needed} structure element")
    headings = [(int(str(e.S)[2:]), e) for e in elements if str(e.S) in ("/H1", "/H2", "/H3")]
    if headings and headings[0][0] != 1:
        problems.append("the first heading is not an H1")
    if roles.count("/H1") > 1:
        problems.append(f"{roles.count('/H1')} H1 headings: the title is the only one")
    previous = 0
    for level, heading in headings:
        if level > previous + 1:
            problems.append(f"a heading skips from H{previous} to H{level}")
        if not _marks_content(heading):
            problems.append(f"an empty H{level}")
        previous = level
    header_ids = {bytes(e.ID) for e in elements if str(e.S) == "/TH" and "/ID" in e}
    for element in elements:
        attributes = element.get("/A", {})
        if str(element.S) == "/TH" and str(attributes.get("/Scope", "")) not in (
            "/Column",
            "/Row",
        ):
            problems.append("a table header cell (/TH) without /Scope Column or Row")
        if str(element.S) == "/TD":
            headers = [bytes(h) for h in attributes.get("/Headers", [])]
            if not headers or not set(headers) <= header_ids:
                problems.append("a data cell (/TD) not tied to its header cells (/Headers)")
        if str(element.S) == "/Figure" and not str(element.get("/Alt", "")).strip():
            problems.append("a /Figure without /Alt text")
    for number, page in enumerate(pdf.pages, start=1):
        for name, font in page.Resources.get("/Font", {}).items():
            fonts = [font, *font.get("/DescendantFonts", [])]
            descriptors = [f.FontDescriptor for f in fonts if "/FontDescriptor" in f]
            if not any(
                key in d for d in descriptors for key in ("/FontFile", "/FontFile2", "/FontFile3")
            ):
                problems.append(
                    f"page {number}: font {name} ({font.get('/BaseFont')}) not embedded"
                )
    return sorted(set(problems))


def pdfua_report(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    from pdfua import validate

    report = validate(str(path))
    findings = [f"{f.rule_id} {f.severity.name}: {f.message}" for f in report.findings]
    skipped = [(o.rule_id, o.skipped_reason or "") for o in report.skipped]
    return findings, skipped


def assert_pdf_ua(data: bytes, title: str, path: Path) -> None:
    """Both checkers find nothing in ``data`` (kept at ``path`` for a person to open); the
    one pdfua rule that crashes on pikepdf 10 is the only skip allowed."""
    path.write_bytes(data)
    findings, skipped = pdfua_report(path)
    assert findings == [], findings
    for rule, reason in skipped:
        assert (rule, KNOWN_PDFUA_CRASH[1] in reason) == (KNOWN_PDFUA_CRASH[0], True), (
            rule,
            reason,
        )
    assert ua_problems(data, title) == []


def render_pages(data: bytes, name: str) -> int:
    """Every page as a PNG in var/test-artifacts (``name``-page-N.png), each with ink on it
    beyond its running header and page number (1% of it; the last page 0.1%); how many."""
    pdf = pypdfium2.PdfDocument(data)
    for number, page in enumerate(pdf, start=1):
        # the last page may hold only the end of the record: some ink, not a page's worth
        share = 0.01 if number < len(pdf) else 0.001
        image = page.render(scale=1.5).to_pil()
        image.save(artifact(f"{name}-page-{number}.png"))
        grey = image.convert("L")
        # the body, between the running header and the footer (12% to 90% of the height)
        body = grey.crop((0, int(grey.height * 0.12), grey.width, int(grey.height * 0.9)))
        dark = sum(body.histogram()[:160])
        assert dark > share * body.width * body.height, (number, dark)
    return len(pdf)
