"""The PDF and Word exports of the demo DPIA print what people chose, never the template's
codes.

What counts as a leaked code is worked out from the template itself (and, for row ids,
from the DPIA's content), so that a new field or option is checked without editing this
file. The rule, chosen to catch every code without flagging ordinary English:

1. **Code-shaped names anywhere.** Every option ``value``, field ``id``, column ``id``,
   section ``id``, level ``id``, computed ``id`` and heat-map ``id`` of the template (and
   the row keys ``id`` and ``ref`` every table row has) that
   is lower-case words or digits joined by ``-`` or ``_`` (``loss-of-confidentiality``,
   ``harm_type``, ``9-2-a-explicit-consent``, ``3-months``) must not appear as a token
   (case-sensitive, not inside a longer word), unless the template's own human text
   (titles, labels, guidance, descriptions) uses it verbatim: then it is a word.
2. **Plain-word names where a code would sit.** A one-word name (``status``, ``ref``,
   ``required``, ``open``) is ordinary English, so it is forbidden only in the two shapes a
   leak takes: as a key (``status:`` in lower case after a line start, space, ``;`` or
   ``(``), and, for an option value that differs from its label, as a whole value (a
   whole Word paragraph or table cell, or one of its ``, ``/``; `` separated items, equal
   to it: ``required`` where "DPIA required" belongs, ``2`` where "Possible" belongs).
3. **Row ids.** No ``id`` of any table row in the content (``demo-risk-1``): references to
   rows print as their ref and title.
4. **Raw values.** No whole Word paragraph or cell that is ``True``, ``False``, ``None``,
   ``true``, ``false`` or ``null``.

Rules 1 to 3 (keys) run on the text of both files. The whole-value checks (2 and 4) run on
the Word file only: a PDF's text comes in wrapped lines, so "Internal or / external" in a
narrow column would read as the value ``external`` and "None / recorded" as ``None``;
Word's paragraphs and cells are whole. Both files print the same readable view
(server/domain/readable.py), and the PDF is also checked for the labels it must show.
The demo is checked as seeded, and again with every field of the template answered (one
row in every table, every column filled), so that every kind of value is printed once.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docx
import pytest
import pytest_asyncio

from server.domain.content import document_content, write_field
from server.domain.documents import UpdateRecord
from server.domain.readable import long_date, long_time
from server.domain.templates import Template, load_template
from server.services.reports import HASH_LABEL
from tests.support.exports import Demo, artifact, demo_world, pdf_pages, pdf_text, word_text

TEMPLATE = load_template()
CODE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)+$")
WORD = re.compile(r"^[a-z0-9]+$")
RAW = {"True", "False", "None", "true", "false", "null"}


# -- the forbidden strings, from the template ------------------------------------------------


def _names(template: Template) -> tuple[set[str], set[str]]:
    """(every name of the template, the option values that differ from their labels)."""
    names: set[str] = set()
    values: set[str] = set()

    def options(spec: dict[str, Any]) -> None:
        for option in spec.get("options") or []:
            names.add(option["value"])
            if option["value"] != option["label"]:
                values.add(option["value"])

    for section in template.sections:
        names.add(section["id"])
        names.update(item["id"] for item in section.get("computed") or [])
        for field in section["fields"]:
            names.add(field["id"])
            options(field)
            for column in field.get("columns") or []:
                names.add(column["id"])
                options(column)
    matrix = template.content["risk_matrix"]
    names.update(level["id"] for level in matrix["levels"])
    names.update(m["id"] for m in matrix["heatmap"]["maps"])
    names.update(("id", "ref"))  # every table row's own keys (docs/document-model.md)
    for scale in ("likelihood", "severity"):
        options({"options": matrix[scale]})
    return names, values


def _human_text(value: Any, keys: tuple[str, ...] = ()) -> Iterator[str]:
    """Every string of the template a person reads (not ids, values or kinds)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in (
                "title",
                "short_title",
                "label",
                "guidance",
                "description",
                "caption",
                "corner",
                "unrated",
            ):
                if isinstance(inner, str):
                    yield inner
            else:
                yield from _human_text(inner, (*keys, key))
    elif isinstance(value, list):
        for inner in value:
            yield from _human_text(inner, keys)


@dataclass(frozen=True)
class Forbidden:
    codes: frozenset[str]  # rule 1
    keys: frozenset[str]  # rule 2, as "name:"
    whole_values: frozenset[str]  # rule 2, whole values
    row_ids: frozenset[str]  # rule 3

    @classmethod
    def of(cls, template: Template, content: dict[str, Any]) -> Forbidden:
        names, values = _names(template)
        human = "\n".join(_human_text(template.content))
        codes = {
            n
            for n in names
            if CODE.match(n) and not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", human)
        }
        row_ids = {
            str(row["id"])
            for fields in content.values()
            for value in fields.values()
            if isinstance(value, list)
            for row in value
            if isinstance(row, dict) and "id" in row
        }
        return cls(
            frozenset(codes),
            frozenset(n for n in names if WORD.match(n) and not n.isdigit()),
            frozenset(v for v in values if not CODE.match(v)),
            frozenset(row_ids),
        )

    def found_in(self, text: str, units: list[str]) -> list[str]:
        """What leaked: ``text`` is the whole file's text, ``units`` its whole paragraphs
        and cells (none for a PDF, whose lines are wrapped)."""
        found = []
        for code in sorted(self.codes | self.row_ids):
            if re.search(rf"(?<![\w-]){re.escape(code)}(?![\w-])", text):
                found.append(f"code {code!r}")
        for key in sorted(self.keys):
            if re.search(rf"(?:^|[\s;(]){re.escape(key)}:", text, re.MULTILINE):
                found.append(f"key {key + ':'!r}")
        for unit in units:
            for item in [unit.strip(), *re.split(r"[,;] ", unit.strip())]:
                if item in self.whole_values or item in RAW:
                    found.append(f"value {item!r} in {unit.strip()[:60]!r}")
        return found


def test_the_rule_finds_the_leaks_the_old_exports_had() -> None:
    """The rule itself: it flags what the exports used to print, and not plain English."""
    forbidden = Forbidden.of(TEMPLATE, {"risks": {"register": [{"id": "demo-risk-1"}]}})
    old = [
        "harm_type: loss-of-confidentiality; likelihood: 2; ref: R1; severity: 3; status: open",
        "vulnerable-subjects, matching-combining, special-category",
        "required",
        "yes",
        "Measures that treat this risk: demo-risk-1",
        "True",
    ]
    found = forbidden.found_in("\n".join(old), old)
    for leak in (
        "code 'harm_type'",
        "code 'loss-of-confidentiality'",
        "key 'status:'",
        "key 'ref:'",
        "code 'vulnerable-subjects'",
        "value 'required' in 'required'",
        "code 'demo-risk-1'",
        "value 'True' in 'True'",
    ):
        assert leak in found, (leak, found)
    fine = [
        "Status: Draft. Lead organisation: London Borough of Camden.",
        "The sharing includes health data: a DPIA is required.",
        "Loss of confidentiality",
        "Open",
        "High (likelihood Possible, severity Severe)",
        "Re-identification of pseudonymised data",
    ]
    assert forbidden.found_in("\n".join(fine), fine) == []


# -- the demo, exported -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def demo(sqlite_url: str) -> AsyncIterator[Demo]:
    async with demo_world(sqlite_url) as built:
        yield built


async def _exported(demo: Demo, artefact: str) -> dict[str, tuple[str, list[str]]]:
    pdf, _, _ = await demo.exports.export(demo.owner, demo.dpia_id, "pdf")
    word, _, _ = await demo.exports.export(demo.owner, demo.dpia_id, "docx")
    await asyncio.to_thread(_keep_pages, pdf, artefact)
    return {"pdf": pdf_text(pdf), "word": word_text(word)}


def _keep_pages(data: bytes, name: str) -> None:
    """The first page (heat maps, register, action plan, sign-offs) and the page where the
    risk register's section starts, for a person to look at (var/test-artifacts)."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    risks = next(
        i for i, page in enumerate(pdf) if "Step 5:" in page.get_textpage().get_text_range()
    )
    for index, suffix in ((0, "page1"), (risks, "risks")):
        pdf[index].render(scale=1.5).to_pil().save(artifact(f"{name}-{suffix}.png"))


async def _content(demo: Demo) -> dict[str, Any]:
    stored = await demo.store.load(demo.dpia_id)
    assert stored is not None
    return document_content(stored.to_doc(), TEMPLATE)


@pytest.mark.asyncio
async def test_the_demo_exports_print_labels_not_codes(demo: Demo) -> None:
    forbidden = Forbidden.of(TEMPLATE, await _content(demo))
    for name, (text, units) in (await _exported(demo, "demo-pdf")).items():
        found = forbidden.found_in(text, units)
        assert found == [], (name, found)
        flat = " ".join(text.split())
        for shown in (
            "DPIA required",  # screening outcome
            "Data about vulnerable people, including children and employees",
            "Loss of confidentiality",  # R1's type of harm
            "Possible",
            "Severe",
            "Open",
            "Yes",  # children or vulnerable people
            "No",  # novel technology
            "Not yet rated: R1",
        ):
            assert shown in flat, (name, shown)


def _answer_everything(doc: Any, template: Template, content: dict[str, Any]) -> list[str]:
    """Answer every field of the template in ``doc`` (one new row in every table, every
    column filled); the labels that must now be printed."""
    expected: list[str] = []
    new_rows: dict[str, dict[str, Any]] = {}
    for section in template.sections:
        for field in section["fields"]:
            path = f"{section['id']}.{field['id']}"
            if field["kind"] == "table":
                existing = content[section["id"]][field["id"]] or []
                ref = f"{field.get('row_prefix', 'X')}{len(existing) + 1}"
                new_rows[path] = {"id": f"row-{path.replace('.', '-')}", "ref": ref}
    for section in template.sections:
        for field in section["fields"]:
            path = f"{section['id']}.{field['id']}"
            if field["kind"] == "table":
                row = dict(new_rows[path])
                for column in field["columns"]:
                    row[column["id"]] = _answer(column, new_rows, expected)
                write_field(doc, section["id"], field, [*content[section["id"]][field["id"]], row])
            else:
                value = _answer(field, new_rows, expected)
                write_field(doc, section["id"], field, value)
    return expected


def _answer(spec: dict[str, Any], rows: dict[str, dict[str, Any]], expected: list[str]) -> Any:
    kind = spec["kind"]
    if kind == "richtext":
        return [
            {"type": "paragraph", "content": [{"text": f"Answer to {spec['label']}"}]},
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [{"type": "paragraph", "content": [{"text": "A listed point"}]}],
                    }
                ],
            },
        ]
    if kind in ("text", "longtext"):
        return f"Answer to {spec['label']}"
    if kind == "yesno":
        return True
    if kind == "date":
        expected.append("3 March 2027")
        return "2027-03-03"
    if kind == "number":
        return 12
    if kind == "choice":
        option = spec["options"][-1]
        expected.append(option["label"])
        return option["value"]
    assert kind == "multichoice", kind
    if spec.get("options_from"):
        row = rows[spec["options_from"]]
        expected.append(row["ref"])
        return [row["id"]]
    expected.extend(o["label"] for o in spec["options"][:2])
    return [o["value"] for o in spec["options"][:2]]


@pytest.mark.asyncio
async def test_every_kind_of_answer_prints_as_its_label(demo: Demo) -> None:
    content = await _content(demo)
    stored = await demo.store.load(demo.dpia_id)
    assert stored is not None
    doc = stored.to_doc()
    before = doc.get_state()
    with doc.transaction():
        expected = _answer_everything(doc, TEMPLATE, content)
    await demo.store.append(
        [
            UpdateRecord(
                demo.dpia_id,
                stored.last_seq + 1,
                doc.get_update(before),
                f"user:{demo.owner.id}",
                "browser",
                "test",
                datetime.now(UTC),
            )
        ]
    )
    await demo.dpias.add_party(demo.owner, demo.dpia_id, "joint_controller", name="NHS Trust")
    await demo.signoffs.sign(
        demo.owner,
        demo.dpia_id,
        kind="measures_approved",
        decision="approve_with_conditions",
        conditions="Train staff first",
    )
    forbidden = Forbidden.of(TEMPLATE, await _content(demo))
    assert "row-risks-register" in forbidden.row_ids  # rule 3 is armed
    for name, (text, units) in (await _exported(demo, "demo-answered-pdf")).items():
        found = forbidden.found_in(text, units)
        assert found == [], (name, found)
        flat = " ".join(text.split())
        for shown in {*expected, "Joint controller", "Approve with conditions", "• A listed point"}:
            assert shown in flat, (name, shown)


@pytest.mark.asyncio
async def test_the_demo_exports_carry_the_cover_and_each_sign_off(demo: Demo) -> None:
    """The cover says what the record is (status, every party and its role, the version,
    the hash of the whole content, which a sign-off of the whole DPIA binds to) and each
    sign-off who signed what, as whom, when, deciding what, over which hash, and whether
    that still matches; every page of the PDF is numbered "Page X of N" under a running
    header with the DPIA's title and status."""
    record = await demo.exports.gather(demo.owner, demo.dpia_id)
    (signoff,) = record.signoffs
    pdf, _, _ = await demo.exports.export(demo.owner, demo.dpia_id, "pdf")
    word, _, _ = await demo.exports.export(demo.owner, demo.dpia_id, "docx")
    pairs = [
        ("Status", "Draft"),
        ("Lead organisation", "London Borough of Camden"),
        ("London Borough of Camden", "Controller"),
        ("North London NHS Foundation Trust", "Joint controller"),
        ("Version", f"Version {record.seq}"),
        ("Exported", long_date(record.exported_at)),  # the day: the minute may turn
        ("Signed by", "Grace Okafor"),
        ("Role", "DPO"),
        ("Organisation", "London Borough of Camden"),
        ("Signed on", long_time(signoff.created_at)),
        ("Decision", "Approve with conditions"),
        ("Version signed", f"Version {signoff.seq}"),
        ("Matches the current content", "Yes"),
        ("State", "Valid"),
    ]
    title = "Risk or measure signed off: R1 Health details seen by outreach staff"
    hashes = (record.content_hash, signoff.content_hash)
    assert record.content_hash != signoff.content_hash  # the whole DPIA, and one risk

    pages = pdf_pages(pdf)
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page, number
        assert "Sharing rough sleeping data between Camden and the NHS" in page, number
        assert "Draft" in page, number
    lines = [" ".join(line.split()) for page in pages for line in page.splitlines()]
    for label, value in pairs:  # a row's header and its value on one line
        assert any(line.startswith(f"{label} {value}") for line in lines), (label, value)
    text = "\n".join(pages)
    assert title in " ".join(text.split())
    for digest in hashes:
        assert digest in "".join(text.split()), digest

    document = docx.Document(io.BytesIO(word))
    rows = {tuple(cell.text for cell in row.cells)[:2] for t in document.tables for row in t.rows}
    for label, value in pairs:
        assert any(r[0] == label and r[1].startswith(value) for r in rows), (label, value)
    assert (HASH_LABEL, record.content_hash) in rows
    assert (f"{HASH_LABEL} signed", signoff.content_hash) in rows
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    assert any(h.startswith(title) for h in headings)
