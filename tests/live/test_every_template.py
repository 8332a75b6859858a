"""Every shipped template makes a document that seeds, opens and exports (issue 17): for
each template id, a document created from it (through "New DPIA" for the assessments, with
every field answered) opens in the editor with its own template, shows its history and
review pages, and exports to PDF and Word with its section titles and answers printed as
their labels; its JSON export round-trips the answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map
from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.content import write_content
from server.domain.projects import DocumentKind
from server.domain.templates import (
    Template,
    assessment_templates,
    load_template,
    template_ids,
)
from server.services.accounts import AccountService, password_hasher
from server.services.dpias import DpiaService
from server.storage.database import create_engine
from server.storage.updates import SqlUpdateStore
from tests.support.exports import pdf_pages, word_text
from tests.support.live import LiveServer
from tests.support.site import Site, csrf_field, seeded_server

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Site]]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('templates') / 'opendpia.db'}"
    with seeded_server(url) as served:
        yield served


def _answer(spec: dict[str, Any], rows: dict[str, list[dict[str, Any]]]) -> Any:
    kind = spec["kind"]
    if spec.get("options_from"):
        return [row["id"] for row in rows.get(spec["options_from"], [])[:1]]
    if kind in ("choice", "multichoice"):
        first = spec["options"][-1]["value"]
        return first if kind == "choice" else [first]
    return {
        "text": f"Answer to {spec['label']}",
        "longtext": f"Longer answer to {spec['label']}",
        "yesno": True,
        "date": "2026-11-30",
        "number": 30,
    }.get(kind)


def _content(template: Template) -> dict[str, dict[str, Any]]:
    """Every field answered; tables get one row (rows first, so options_from can name them)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for section in template.sections:
        for spec in section["fields"]:
            if spec["kind"] == "table":
                rows[f"{section['id']}.{spec['id']}"] = [
                    {"id": f"row{section['id']}{spec['id']}", "ref": f"{spec['row_prefix']}1"}
                ]
    content: dict[str, dict[str, Any]] = {}
    for section in template.sections:
        answers = content.setdefault(section["id"], {})
        for spec in section["fields"]:
            path = f"{section['id']}.{spec['id']}"
            if spec["kind"] == "richtext":
                answers[spec["id"]] = [
                    {"type": "paragraph", "content": [{"text": f"Words for {spec['label']}"}]}
                ]
            elif spec["kind"] == "table":
                row = rows[path][0]
                for column in spec["columns"]:
                    row[column["id"]] = _answer(column, rows)
                answers[spec["id"]] = [row]
            else:
                answers[spec["id"]] = _answer(spec, rows)
    return content


def _seeded(template: Template) -> bytes:
    doc: Doc[Any] = Doc()
    with doc.transaction():
        meta = doc.get("meta", type=Map)
        meta["template"] = template.id
        meta["template_version"] = template.version
        write_content(doc, template, _content(template))
    return doc.get_update()


def _kind(template_id: str) -> DocumentKind:
    return next((k for k in DocumentKind if k.template_id == template_id), DocumentKind.DPIA)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("template_id", template_ids())
async def test_a_document_from_every_template_seeds_opens_and_exports(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient, template_id: str
) -> None:
    live, site = server
    template = load_template(template_id)
    engine = create_engine(live.settings.database_url)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        accounts = AccountService(sessions, password_hasher("fast-for-tests"))
        user = await accounts.user_by_email(site.emails["owner"])
        assert user is not None
        dpia_id = await DpiaService(sessions, SqlUpdateStore(engine)).create(
            user,
            f"From {template_id}",
            user.organisation_ids[0],
            template_id=template_id,
            initial_state=_seeded(template),
            kind=_kind(template_id),
        )
    finally:
        await engine.dispose()

    editor = await owner.get(f"/dpias/{dpia_id}")
    assert editor.status_code == 200, editor.text
    config = json.loads(
        re.search(r'data-config="([^"]+)"', editor.text)
        .group(1)  # type: ignore[union-attr]
        .replace("&#34;", '"')
        .replace("&quot;", '"')
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )
    assert config["template"]["id"] == template_id
    for page in ("history", "workflow", "participants", "versions/1"):
        shown = await owner.get(f"/dpias/{dpia_id}/{page}")
        assert shown.status_code == 200, (page, shown.text[:500])
    proposed = await owner.get(f"/dpias/{dpia_id}/risks/proposed")
    assert proposed.status_code == 200

    pdf = await owner.get(f"/dpias/{dpia_id}/export.pdf")
    assert pdf.status_code == 200, pdf.text[:500]
    text = _flat(" ".join(pdf_pages(pdf.content)))
    word = await owner.get(f"/dpias/{dpia_id}/export.docx")
    assert word.status_code == 200, word.text[:500]
    word_all, _ = word_text(word.content)
    word_all = _flat(word_all)
    for section in template.sections:
        assert _flat(section["title"]) in text, section["title"]
        assert _flat(section["title"]) in word_all, section["title"]
    # Answers print as their labels, never as stored values.
    choices = [
        f
        for s in template.sections
        for f in s["fields"]
        if f["kind"] == "choice" and f["options"][-1]["value"] != f["options"][-1]["label"]
    ]
    for spec in choices:
        assert _flat(spec["options"][-1]["label"]) in text, spec["id"]
        assert _flat(spec["options"][-1]["label"]) in word_all, spec["id"]

    csv = await owner.get(f"/dpias/{dpia_id}/export.csv")
    has_plan = any(
        f"{s['id']}.{f['id']}" == "measures.plan" for s in template.sections for f in s["fields"]
    )
    assert csv.status_code == (200 if has_plan else 400)

    exported = await owner.get(f"/dpias/{dpia_id}/export.json")
    assert exported.status_code == 200
    assert json.loads(exported.content)["content"] == _content(template)


async def test_new_dpia_offers_every_assessment_template_and_uses_the_one_chosen(
    server: tuple[LiveServer, Site], owner: httpx.AsyncClient
) -> None:
    form = await owner.get("/dpias/new")
    offered = re.findall(r'<option value="([a-z-]+)"', form.text)
    assert offered[: len(assessment_templates())] == [t.id for t in assessment_templates()]
    lead = re.search(r'<select id="lead" name="lead" required>\s*<option value="(\d+)"', form.text)
    assert lead is not None
    made = await owner.post(
        "/dpias/new",
        data={
            "csrftoken": csrf_field(form.text),
            "title": "Town centre cameras",
            "lead": lead.group(1),
            "template": "surveillance-dpia",
            "origin": "",
        },
    )
    assert made.status_code == 303, made.text
    editor = await owner.get(made.headers["location"])
    assert "surveillance-dpia" in editor.text and "Camera locations" in editor.text
    wrong = await owner.post(
        "/dpias/new",
        data={
            "csrftoken": csrf_field(form.text),
            "title": "Not a template",
            "lead": lead.group(1),
            "template": "project-idea",
        },
    )
    assert wrong.status_code == 400 and "Choose a template your organisation may use" in wrong.text
