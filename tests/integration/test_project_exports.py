"""A whole project to one JSON file and back as a new project (issue 16), on both databases:
the same content per document, new references, the parties kept, source links pointed at
the new documents, sign-offs left behind as history text; and files that must be refused."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from server.domain.errors import InvalidInput
from server.domain.projects import DocumentKind
from server.services.project_exports import ProjectExportService
from server.services.projects import ProjectService
from server.storage.models import Project, ProjectParty, SourceLink
from tests.support.review import (
    World,
    append_change,
    edit,
    party_signature,
    review_world,
    text,
    value,
)

pytestmark = pytest.mark.asyncio


@dataclasses.dataclass
class Setting:
    w: World
    projects: ProjectService
    service: ProjectExportService
    project_id: str
    idea_id: str


@pytest_asyncio.fixture
async def setting(database_url: str) -> AsyncIterator[Setting]:
    async with review_world(database_url) as w:
        projects = ProjectService(w.sessions, w.dpias)
        service = ProjectExportService(w.sessions, projects, w.dpias, w.exports, w.audit)
        project_id = await projects.project_of(w.dpia_id)
        assert project_id is not None
        async with w.sessions.begin() as session:
            session.add(ProjectParty(project_id=project_id, name="Outreach CIC", role="processor"))
        idea_id = await projects.start_step(w.owner, project_id, DocumentKind.IDEA)
        await edit(w, text("need.aims", "Find people sleeping rough sooner", "Second *para*"))
        await edit(w, value("processing.children_vulnerable", True))
        await append_change(w.store, idea_id, text("outcome.outcome", "Fewer nights out"), "user:1")
        async with w.sessions.begin() as session:
            session.add(
                SourceLink(
                    document_id=w.dpia_id,
                    field="need.aims",
                    source_document_id=idea_id,
                    source_fields=json.dumps(["outcome.outcome"]),
                    source_hash="a" * 64,
                    source_text="Fewer nights out",
                    confirmed_by="Olive Owner",
                    confirmed_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
                )
            )
        yield Setting(w, projects, service, project_id, idea_id)


async def test_a_project_exports_and_imports_as_a_new_equal_project(setting: Setting) -> None:
    s, w = setting, setting.w
    camden = (w.owner.organisation_ids[0], "London Borough of Camden")
    await party_signature(
        w.sessions, w.history, w.dpia_id, w.dpo, organisation=camden, capacity="dpo"
    )
    await w.exports.export(w.owner, w.dpia_id, "csv")  # an event of the DPIA's chain
    raw, name = await s.service.export(w.owner, s.project_id)
    assert name == f"{s.project_id}.json"
    data = json.loads(raw)
    assert data["format"] == "opendpia.project"
    assert data["project"]["title"] == "Rough sleeping outreach"
    assert data["project"]["step"] == "generate_ideas"
    assert [d["kind"] for d in data["documents"]] == ["dpia", "idea"]
    dpia = data["documents"][0]
    assert dpia["reference"] == w.dpia_id
    assert dpia["template"] == {"id": "uk-dpia", "version": 1}
    assert dpia["signoffs"][0]["signer"] == "Dee Pio"
    assert dpia["signoffs"][0]["capacity"] == "dpo"
    assert dpia["source_links"][0]["source"] == s.idea_id
    assert dpia["history"]["versions"] >= 3
    assert {"kind": "export", "summary": "exported as CSV"}.items() <= dpia["history"]["events"][
        -1
    ].items()
    exported = [e.record.kind for e in await w.audit.entries(s.idea_id)]
    assert exported[-1] == "export"  # each document's export is chained

    project_id, documents = await s.service.import_json(w.editor, raw, w.editor.organisation_ids[0])
    assert project_id != s.project_id and len(documents) == 2
    assert not set(documents) & {w.dpia_id, s.idea_id}
    new = await s.projects.view(w.editor, project_id)
    assert new.title == "Rough sleeping outreach" and new.step.value == "generate_ideas"
    assert [(p.name, str(p.role)) for p in new.parties] == [
        (p["name"], p["role"]) for p in data["project"]["parties"]
    ]
    assert ("Outreach CIC", "processor") in [(p.name, str(p.role)) for p in new.parties]
    assert [d.kind.value for d in new.documents] == ["dpia", "idea"]
    assert all(d.role is not None and d.role.value == "owner" for d in new.documents)
    for old, copy in zip(data["documents"], documents, strict=True):
        record = await w.exports.gather(w.editor, copy)
        assert json.loads(json.dumps(record.content)) == old["content"], old["kind"]
        assert record.signoffs == []  # a record of the other installation, not valid here
        assert record.status.value == "draft"
    async with w.sessions() as session:
        link = await session.scalar(
            select(SourceLink).where(SourceLink.document_id == documents[0])
        )
    assert link is not None and (link.field, link.source_document_id) == (
        "need.aims",
        documents[1],
    )
    entries = await w.audit.entries(documents[0])
    note = next(e.data for e in entries if e.record.kind == "import")
    assert w.dpia_id in note["summary"]
    assert (
        "Sign-offs there (1), not carried over: Dee Pio (London Borough of Camden): approve"
        in (note["elsewhere"])
    )

    again, _ = await s.service.export(w.editor, project_id)
    copied = json.loads(again)
    for before, after in zip(data["documents"], copied["documents"], strict=True):
        assert after["content"] == before["content"] and after["title"] == before["title"]
        assert after["reference"] != before["reference"]


def _export(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "format": "opendpia.project",
        "version": 1,
        "project": {"title": "A project", "step": "generate_ideas", "parties": []},
        "documents": [
            {
                "reference": "PRJ-X-IDEA",
                "kind": "idea",
                "template": {"id": "project-idea", "version": 1},
                "title": "A project",
                "content": {},
            }
        ],
    }
    for path, new in changes.items():
        where = body
        *parents, last = path.split("__")
        for key in parents:
            where = where[int(key)] if isinstance(where, list) else where[key]
        if isinstance(where, list):
            where[int(last)] = new
        else:
            where[last] = new
    return json.dumps(body).encode()


BAD_FILES = [
    (b"\xff\xfe\x00garbage", "The file is not JSON"),
    (b"{not json", "The file is not JSON"),
    (b"[1, 2]", "This is not an OpenDPIA export of a DPIA or a project"),
    (b'{"format": "opendpia.project"}', "Export format version 'None' is not supported"),
    (b"[" * 5000 + b"]" * 5000, "nested more than"),
    (_export(version=2), "Export format version '2' is not supported"),
    (_export(project=[]), "project and documents are needed"),
    (_export(documents=[]), "holds no document"),
    (_export(documents=[{}] * 51), "at most 50 documents"),
    (_export(documents__0=7), "is not an object"),
    (_export(documents__0__kind="memo"), "There is no project step record"),
    (_export(documents__0__template={"id": "no-such", "version": 1}), "incomplete"),
    (_export(documents__0__template={"id": "project-idea", "version": 9}), "version 9"),
    (_export(documents__0__content={"nope": {}}), "a section 'nope' the template lacks"),
    (_export(documents__0__content=[]), "incomplete"),
    (_export(documents__0__reference="R" * 101), "longer than 100 characters"),
    (_export(documents__0__title="x"), "A title of at least 3 characters"),
    (_export(project__step="step-9"), ""),
    (_export(project__title=None), "The project export lacks the project's title"),
    (_export(project__parties=[{"name": "A body", "role": "owner"}]), "no party role"),
    (_export(project__parties=[{"name": "N" * 300, "role": "processor"}]), "longer"),
    (_export(project__parties="all"), "parties must be a list"),
    (_export(documents__0__source_links=[{"field": "a.b"}]), "source fields"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_FILES)
async def test_a_bad_project_file_is_refused_with_a_reason_and_creates_nothing(
    setting: Setting, raw: bytes, message: str
) -> None:
    s, w = setting, setting.w
    async with w.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(Project))
    with pytest.raises(InvalidInput) as refused:
        await s.service.import_file(w.owner, raw, w.owner.organisation_ids[0])
    assert message in str(refused.value)
    assert str(refused.value)[:1].isupper()
    async with w.sessions() as session:
        after = await session.scalar(select(func.count()).select_from(Project))
    assert after == before


async def test_a_dpia_file_still_imports_as_a_dpia(setting: Setting) -> None:
    s, w = setting, setting.w
    raw, _, _ = await w.exports.export(w.owner, w.dpia_id, "json")
    project_id, documents = await s.service.import_file(w.owner, raw, w.owner.organisation_ids[0])
    assert project_id is None
    copy, _, _ = await w.exports.export(w.owner, documents[0], "json")
    assert copy == raw
