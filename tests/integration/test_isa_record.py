"""An ISA's printed record (issue 16): the same cover, fields and PDF/UA-1 checks as a
DPIA's, a signature block per signing party with a line per capacity its template requires,
filled from the sign-off records (or "Not yet signed"), and the reviewing body's endorsement
on the cover and in a block of its own. The template is a small test one
(tests/fixtures/templates/test-isa.json) so that this holds for whatever ISA template ships;
the record is built directly, as ExportService.gather builds it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docx
from pycrdt import Doc, Map

from server.domain.content import WHOLE, document_content, target_hash, write_content
from server.domain.dpias import DpiaStatus
from server.domain.parties import health_data_of, required_capacities
from server.domain.projects import DocumentKind
from server.domain.templates import Template, seed_update
from server.domain.workflow import SignOffState
from server.services import pdf, word
from server.services.exports import Record, RecordParty, Signature
from server.services.reports import title_line
from tests.support.exports import artifact, pdf_pages, word_text
from tests.support.pdfua import assert_pdf_ua, render_pages

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "templates" / "test-isa.json"
CAMDEN, TRUST, IGFL = 1, 2, 3


def _template() -> Template:
    content = json.loads(FIXTURE.read_text())
    return Template(content["id"], content["version"], content["title"], content)


def _content(template: Template, *, health: bool) -> dict[str, Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(seed_update(template))
    with doc.transaction():
        write_content(
            doc,
            template,
            {
                "purpose": {
                    "purpose": [
                        {
                            "type": "paragraph",
                            "content": [{"type": "text", "text": "Find people sleeping rough"}],
                        }
                    ]
                },
                "data": {
                    "items": [{"id": "d1", "ref": "D1", "name": "Name", "special": False}],
                    "health_data": health,
                },
                "transfer": {"frequency": "Weekly", "review_date": "2027-06-30"},
            },
        )
        doc.get("values", type=Map)  # the seed's values map stays
    return document_content(doc, template)


def _signature(
    id_: int, kind: str, capacity: str, organisation: int, who: str, body: str, hash_: str
) -> Signature:
    return Signature(
        id=id_,
        kind=kind,
        capacity=capacity,
        party_organisation_id=organisation,
        party=body,
        signer_name=who,
        signer_organisation=body,
        decision="approve",
        conditions="",
        created_at=datetime(2026, 12, 2, 10, 15, tzinfo=UTC),
        target=WHOLE,
        content_hash=hash_,
        state=SignOffState.VALID if hash_ != "0" * 64 else SignOffState.STALE,
    )


def _record(*, health: bool = True) -> Record:
    template = _template()
    content = _content(template, health=health)
    current = target_hash(template, content, WHOLE)
    parties = (
        RecordParty("London Borough of Camden", "controller", CAMDEN),
        RecordParty("North London NHS Foundation Trust", "joint_controller", TRUST),
        RecordParty("IGfL steering group", "reviewing_body", IGFL),
    )
    return Record(
        "PRJ-CAM-2026-1-ISA",
        "Rough sleeping outreach",
        DpiaStatus.AWAITING_APPROVAL,
        "London Borough of Camden",
        [(p.name, p.role) for p in parties],
        template,
        content,
        7,
        [],
        datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        kind=DocumentKind.ISA,
        project=("PRJ-CAM-2026-1", "Rough sleeping outreach"),
        project_parties=parties,
        signatures=(
            _signature(1, "party_approval", "dpo", CAMDEN, "Dee Pio", parties[0].name, current),
            _signature(2, "party_approval", "siro", TRUST, "Sam Iro", parties[1].name, "0" * 64),
            _signature(3, "endorsement", "reviewer", IGFL, "Rae Viewer", parties[2].name, current),
        ),
    )


def test_the_template_says_which_capacities_sign_and_health_data_adds_the_guardian() -> None:
    template = _template()
    with_health = _content(template, health=True)
    without = _content(template, health=False)

    def required(content: dict[str, Any], role: str = "controller") -> list[str]:
        health = health_data_of(content)
        return [c.value for c in required_capacities(template.content, role, health_data=health)]

    assert required(with_health) == ["dpo", "siro", "caldicott_guardian"]
    assert required(without) == ["dpo", "siro"]
    assert required(with_health, "processor") == []  # only controllers sign


def test_the_isa_pdf_has_a_signature_block_per_party_and_the_endorsement() -> None:
    record = _record()
    data = pdf.render(record)
    assert_pdf_ua(data, title_line(record), artifact("isa-record.pdf"))
    assert render_pages(data, "isa-record") >= 1
    pages = [" ".join(page.split()) for page in pdf_pages(data)]
    text = " ".join(pages)
    assert pages[0].startswith("Information sharing agreement Rough sleeping outreach")
    for expected in (
        "Information sharing agreement",
        "Project PRJ-CAM-2026-1: Rough sleeping outreach",
        "Endorsement IGfL steering group: Approve, 2 December 2026 (Valid)",
        "IGfL steering group Reviewing body",
        "London Borough of Camden (Controller)",
        "North London NHS Foundation Trust (Joint controller)",
        "Signed by Dee Pio Capacity Data protection officer Organisation London Borough of Camden",
        "Signed by Sam Iro Capacity Senior information risk owner",
        "Matches the current content No: changed since signed",
        "STALE: changed since signed",
        "Endorsement by IGfL steering group",
        "Endorsed by Rae Viewer",
        "Why the parties share the data Find people sleeping rough",
        "Weekly",
        "30 June 2027",
    ):
        assert expected in text, expected
    # each party: DPO, SIRO and (health data) Caldicott Guardian; two lines signed of six
    assert text.count("Not yet signed") == 4
    assert text.count("Caldicott Guardian") == 2
    assert "IGfL steering group (Reviewing" not in text  # the reviewing body does not sign
    assert "Risk heat maps" not in text and "Action plan" not in text  # the DPIA's parts


def test_the_isa_word_file_says_the_same() -> None:
    record = _record(health=False)
    data = word.render(record)
    text, units = word_text(data)
    document = docx.Document(io.BytesIO(data))
    headings = {
        p.text: p.style.name for p in document.paragraphs if p.style.name.startswith("Heading")
    }
    assert headings["Signatures"] == "Heading 1"
    assert headings["London Borough of Camden (Controller)"] == "Heading 2"
    assert headings["Senior information risk owner"] == "Heading 3"
    assert headings["Endorsement"] == "Heading 1"
    assert units.count("Not yet signed") == 2  # Camden's SIRO, the trust's DPO
    assert "Caldicott Guardian" not in text  # no health data: not required
    assert "Dee Pio" in units and "Sam Iro" in units and "Rae Viewer" in units
    assert "STALE: changed since signed" in units
    assert document.core_properties.subject == "Information sharing agreement"
    assert "Risk heat maps" not in text
