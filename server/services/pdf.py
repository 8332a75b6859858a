"""The PDF of a document's record (a DPIA, an ISA, any step of a project): HTML from
record.html (Jinja2), laid out by WeasyPrint as a tagged PDF/UA-1 file. The DPIA's risk
parts (heat maps, register, action plan) print where the template has them, signature
blocks where the document is signed per party (server/services/reports.py).

Tagged means the file carries its structure (headings, paragraphs, tables with header
cells, the document's language and title), which is what a screen reader reads; PDF/UA-1
(ISO 14289-1) is the standard that says how, and what the PDF and Word files show is
worked out once in server/services/reports.py. How the file is checked (there is no
veraPDF here) is in docs/exports.md.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from server.domain.readable import read_content, register_summary
from server.domain.risk import RiskMatrix
from server.services.exports import Record
from server.services.reports import (
    LANGUAGE,
    RECORD_TEMPLATES,
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


@cache
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(RECORD_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(record: Record) -> str:
    """The record as one HTML page for print (also what a test or a person can open)."""
    risks = has_risks(record)
    return (
        _templates()
        .get_template("record.html")
        .render(
            record=record,
            language=LANGUAGE,
            kind_label=kind_label(record),
            title=title_line(record),
            facts=cover_facts(record),
            parties=parties(record),
            signature_blocks=signature_blocks(record) if has_signature_blocks(record) else None,
            endorsements=endorsement_cards(record),
            signoffs=signoff_cards(record),
            risks=risks,
            heat_maps=(
                RiskMatrix.from_template(record.template.content).heat_maps(record.risks)
                if risks
                else []
            ),
            register=register_summary(record.template, record.content) if risks else None,
            action_plan=action_plan(record) if risks else None,
            sections=read_content(record.template, record.content),
        )
    )


def render(record: Record) -> bytes:
    """The PDF/UA-1 file. Nothing is fetched: the page refers to no URL, and a fetcher that
    allows no protocol makes sure that text in a DPIA never makes the server fetch one."""
    from weasyprint import CSS, HTML
    from weasyprint.urls import URLFetcher

    refuse = URLFetcher(allowed_protocols=())
    stylesheet = CSS(string=(RECORD_TEMPLATES / "record.css").read_text(), url_fetcher=refuse)
    data: bytes = HTML(string=html(record), url_fetcher=refuse).write_pdf(
        stylesheets=[stylesheet],
        pdf_variant="pdf/ua-1",
        finisher=_scope_header_cells,
    )
    return data


def _scope_header_cells(document: Any, pdf: Any) -> None:
    """Give each table header cell (/TH) its /Scope: /Column in a table's header rows,
    /Row elsewhere (the record puts a row's header first in the row).

    WeasyPrint already ties every data cell to its headers with /Headers and /ID, which
    PDF/UA-1 accepts; /Scope says the same on the header cell itself, which some screen
    readers and checkers (pdfua's UA-15-003) read instead."""
    from pydyf import Dictionary

    elements: dict[Any, Any] = {
        obj.reference: obj
        for obj in pdf.objects
        if isinstance(obj, Dictionary) and obj.get("Type") == "/StructElem"
    }
    for element in elements.values():
        if element.get("S") != "/TH":
            continue
        row = elements.get(element.get("P"))
        group = elements.get(row.get("P")) if row is not None else None
        in_header = group is not None and group.get("S") == "/THead"
        element["A"]["Scope"] = "/Column" if in_header else "/Row"
