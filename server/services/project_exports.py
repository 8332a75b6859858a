"""A whole project to one JSON file, and that file back as a new project (issue 16).

The file holds the project (title, step, lead organisation, parties, where an adopted
agreement came from) and every document of it the exporting person takes part in: its kind,
template, status, content (as a DPIA's own export carries it), sign-offs, a summary of its
history (the audit chain's events) and the fields drafted from another document (source
links). Importing makes a new project: new references, the importing person its owner, the
parties kept by name, each document recreated from its content as its first logged update,
and the source links pointed at the new documents. Sign-offs, statuses and history are the
record of the other installation: they are not carried over as valid sign-offs; each new
document's audit chain notes what the file said about them, as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.dpias import PartyRole, check_title
from server.domain.errors import InvalidInput
from server.domain.people import check_name
from server.domain.projects import DocumentKind, check_document_kind
from server.domain.workflow import IgStep, check_ig_step
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.exports import FORMAT as DPIA_FORMAT
from server.services.exports import (
    ExportService,
    Record,
    check_document,
    check_format_version,
    checked_template,
    document_body,
    dump_json,
    initial_state,
    parse_file,
)
from server.services.projects import ProjectService
from server.storage.models import SourceLink

FORMAT = "opendpia.project"
# A project holds a document per step and later versions of some; more is not a project.
MAX_DOCUMENTS = 50
MAX_LINKS = 500
# The roles a document's party may have here (a reviewing body once PartyRole has it: the
# DPIA pages read every party's role as a PartyRole).
PARTY_ROLES = {role.value for role in PartyRole}


@dataclass(frozen=True, slots=True)
class ImportedDocument:
    reference: str
    kind: DocumentKind
    title: str
    template_id: str
    state: bytes
    note: str  # what the other installation recorded (status, sign-offs), as text


@dataclass(frozen=True, slots=True)
class ImportedLink:
    document: str
    field: str
    source: str
    source_fields: str
    source_hash: str
    source_text: str
    confirmed_by: str
    confirmed_at: datetime


@dataclass(frozen=True, slots=True)
class ImportedProject:
    title: str
    step: IgStep
    parties: list[tuple[str, str]]
    adopted_from: str | None
    endorsement_origin: str | None
    documents: list[ImportedDocument]
    links: list[ImportedLink]


class ProjectExportService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        projects: ProjectService,
        dpias: DpiaService,
        exports: ExportService,
        audit: AuditTrail,
    ) -> None:
        self._sessions = sessions
        self._projects = projects
        self._dpias = dpias
        self._exports = exports
        self._audit = audit

    async def export(self, user: CurrentUser, project_id: str) -> tuple[bytes, str]:
        """The project's JSON and its file name; each document's export is chained."""
        view = await self._projects.view(user, project_id)
        documents = []
        for document in view.documents:
            if document.role is None:
                continue  # a document the exporting person does not take part in
            record = await self._exports.gather(user, document.id)
            entries = await self._audit.entries(document.id)
            documents.append(
                {
                    "reference": document.id,
                    "kind": document.kind.value,
                    "status": record.status.value,
                    **document_body(record),
                    "signoffs": _signoffs(record),
                    "history": {
                        "versions": record.seq,
                        "events": [
                            {
                                "at": entry.record.at.isoformat(),
                                "kind": entry.record.kind,
                                "summary": str(entry.data.get("summary", "")),
                            }
                            for entry in entries
                        ],
                    },
                    "source_links": await self._links(document.id),
                }
            )
            await self._audit.record(
                document.id,
                "export",
                actor=f"user:{user.id}",
                seq=record.seq,
                data={"summary": "exported with its project as JSON", "format": "json"},
            )
        body = {
            "format": FORMAT,
            "version": 1,
            "project": {
                "reference": view.id,
                "title": view.title,
                "step": view.step.value,
                "lead_organisation": view.lead_organisation,
                "parties": [{"name": p.name, "role": str(p.role)} for p in view.parties],
                "adopted_from": view.adopted_from,
                "endorsement_origin": view.endorsement_origin,
            },
            "documents": documents,
            "documents_not_shared": len(view.documents) - len(documents),
        }
        return dump_json(body), f"{project_id}.json"

    async def _links(self, document_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(SourceLink)
                .where(SourceLink.document_id == document_id)
                .order_by(SourceLink.field)
            )
            return [
                {
                    "field": row.field,
                    "source": row.source_document_id,
                    "source_fields": json.loads(row.source_fields),
                    "source_hash": row.source_hash,
                    "source_text": row.source_text,
                    "confirmed_by": row.confirmed_by,
                    "confirmed_at": _aware(row.confirmed_at).isoformat(),
                }
                for row in rows
            ]

    async def import_file(
        self, user: CurrentUser, raw: bytes, lead_organisation_id: int
    ) -> tuple[str | None, list[str]]:
        """A project's export or a DPIA's, whichever the file is: the new project (None for a
        DPIA) and the new documents, first to open first."""
        data = parse_file(raw)
        if is_project_export(data):
            project_id, documents = await self.import_json(user, raw, lead_organisation_id)
            return project_id, documents
        if not isinstance(data, dict) or data.get("format") != DPIA_FORMAT:
            raise InvalidInput("This is not an OpenDPIA export of a DPIA or a project")
        return None, [await self._exports.import_json(user, raw, lead_organisation_id)]

    async def import_json(
        self, user: CurrentUser, raw: bytes, lead_organisation_id: int
    ) -> tuple[str, list[str]]:
        """A new project equal in content to an exported one, and its documents' ids."""
        project = parse_project(raw)
        project_id = await self._projects.create_empty(
            user,
            project.title,
            lead_organisation_id,
            step=project.step,
            parties=[(name, role, None) for name, role in project.parties],
            adopted_from=project.adopted_from,
            endorsement_origin=project.endorsement_origin,
        )
        new_ids: dict[str, str] = {}
        for document in project.documents:
            new_id = await self._dpias.create(
                user,
                document.title,
                lead_organisation_id,
                template_id=document.template_id,
                initial_state=document.state,
                project_id=project_id,
                kind=document.kind,
            )
            new_ids[document.reference] = new_id
            await self._audit.record(
                new_id,
                "import",
                actor=f"user:{user.id}",
                seq=1,
                data={
                    "summary": f"created from the project export of {document.reference[:100]}",
                    "elsewhere": document.note,
                },
            )
        async with self._sessions.begin() as session:
            for link in project.links:
                if link.source not in new_ids:
                    continue  # drafted from a document the file does not hold
                session.add(
                    SourceLink(
                        document_id=new_ids[link.document],
                        field=link.field,
                        source_document_id=new_ids[link.source],
                        source_fields=link.source_fields,
                        source_hash=link.source_hash,
                        source_text=link.source_text,
                        confirmed_by=link.confirmed_by,
                        confirmed_at=link.confirmed_at,
                    )
                )
        return project_id, list(new_ids.values())


def _signoffs(record: Record) -> list[dict[str, Any]]:
    capacities = {s.id: s.capacity for s in record.signatures}
    return [
        {
            "kind": s.kind.value,
            "target": s.target,
            "signer": s.signer_name,
            "signer_role": s.signer_role,
            "organisation": s.signer_organisation,
            "party": s.party,
            "capacity": capacities.get(s.id, ""),
            "decision": s.decision,
            "conditions": s.conditions,
            "reasons": s.reasons,
            "version": s.seq,
            "content_hash": s.content_hash,
            "state": s.state.value,
            "signed_at": s.created_at.isoformat(),
        }
        for s in record.signoffs
    ]


def is_project_export(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def parse_project(raw: bytes) -> ImportedProject:
    """Everything checked before anything is created; InvalidInput says what is wrong."""
    data = parse_file(raw)
    if not is_project_export(data):
        raise InvalidInput("This is not an OpenDPIA project export")
    check_format_version(data)
    project = data.get("project")
    documents = data.get("documents")
    if not isinstance(project, dict) or not isinstance(documents, list):
        raise InvalidInput("The project export is incomplete: project and documents are needed")
    if not documents:
        raise InvalidInput("The project export holds no document")
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidInput(f"A project export holds at most {MAX_DOCUMENTS} documents")
    imported = [_document(raw_document, n) for n, raw_document in enumerate(documents, 1)]
    references = [d.reference for d in imported]
    if len(set(references)) != len(references):
        raise InvalidInput("Two documents of the project export have the same reference")
    links = [
        _link(reference, item)
        for reference, raw_document in zip(references, documents, strict=True)
        for item in _list(raw_document.get("source_links", []), "source links")
    ]
    if len(links) > MAX_LINKS:
        raise InvalidInput(f"A project export holds at most {MAX_LINKS} source links")
    return ImportedProject(
        title=check_title(_text(project.get("title"), "the project's title")),
        step=check_ig_step(_text(project.get("step"), "the project's step")),
        parties=[_party(item) for item in _list(project.get("parties", []), "parties")],
        adopted_from=_optional(project.get("adopted_from"), "where it was adopted from", 100),
        endorsement_origin=_optional(
            project.get("endorsement_origin"), "the endorsement's origin", 20_000
        ),
        documents=imported,
        links=links,
    )


def _document(raw: Any, number: int) -> ImportedDocument:
    if not isinstance(raw, dict):
        raise InvalidInput(f"Document {number} of the project export is not an object")
    data = check_document(raw)
    kind = check_document_kind(_text(data.get("kind"), f"document {number}'s kind"))
    template = checked_template(data)
    signoffs = _list(data.get("signoffs", []), "sign-offs")
    lines = [
        f"{_short(s.get('signer'))} ({_short(s.get('organisation'))}): "
        f"{_short(s.get('decision'))} on {_short(s.get('signed_at'))}"
        for s in signoffs
        if isinstance(s, dict)
    ]
    status = _short(data.get("status"))
    note = f"Status there: {status}. Sign-offs there ({len(lines)}), not carried over"
    return ImportedDocument(
        reference=_text(data.get("reference"), f"document {number}'s reference", 100),
        kind=kind,
        title=check_title(data["title"]),
        template_id=template.id,
        state=initial_state(template, data["content"]),
        note=note + (": " + "; ".join(lines) if lines else ""),
    )


def _link(document: str, raw: Any) -> ImportedLink:
    if not isinstance(raw, dict):
        raise InvalidInput("A source link of the project export is not an object")
    fields = raw.get("source_fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise InvalidInput("A source link's source fields must be a list of field names")
    source_fields = json.dumps(fields)
    if len(source_fields) > 1000:
        raise InvalidInput("A source link names too many source fields")
    try:
        confirmed_at = datetime.fromisoformat(
            _text(raw.get("confirmed_at"), "a source link's date")
        )
    except ValueError:
        raise InvalidInput("A source link's date is not a date and time") from None
    return ImportedLink(
        document=document,
        field=_text(raw.get("field"), "a source link's field", 200),
        source=_text(raw.get("source"), "a source link's source", 100),
        source_fields=source_fields,
        source_hash=_text(raw.get("source_hash"), "a source link's hash", 64),
        source_text=_text(raw.get("source_text"), "a source link's text", 200_000),
        confirmed_by=_text(raw.get("confirmed_by"), "who confirmed a source link", 200),
        confirmed_at=_aware(confirmed_at),
    )


def _party(raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        raise InvalidInput("A party of the project export is not an object")
    role = _text(raw.get("role"), "a party's role", 30)
    if role not in PARTY_ROLES:
        raise InvalidInput(
            f"There is no party role {role[:30]!r}: choose " + ", ".join(sorted(PARTY_ROLES))
        )
    return check_name(_text(raw.get("name"), "a party's name"), "party name"), role


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"The project export's {what} must be a list")
    return value


def _text(value: Any, what: str, maximum: int = 300) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"The project export lacks {what}")
    if len(value) > maximum:
        raise InvalidInput(f"In the project export, {what} is longer than {maximum} characters")
    return value


def _optional(value: Any, what: str, maximum: int) -> str | None:
    return None if value is None else _text(value, what, maximum)


def _short(value: Any) -> str:
    return str(value)[:200] if value is not None else "unknown"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
