"""The record leaving the system: JSON (importable), CSV action plan, PDF and Word.

JSON carries what makes a DPIA reusable or movable between installations: the template it
was written with, its title, its parties and the canonical content of every field. It is
deterministic (sorted keys, template order), so exporting an imported DPIA gives the same
bytes. Sign-offs, statuses and history are the record *of this installation*: they go into
the PDF and Word documents, not into an import (a moved DPIA is signed again where it lives).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.content import (
    WHOLE,
    Content,
    canonical,
    document_content,
    target_hash,
    write_content,
)
from server.domain.dpias import DpiaStatus
from server.domain.errors import InvalidInput
from server.domain.inputs import parse_json, whole_number
from server.domain.projects import DocumentKind
from server.domain.readable import EMPTY_CELL, column_cells
from server.domain.risk import register_rows
from server.domain.signatures import ENDORSEMENT
from server.domain.templates import Template, UnknownTemplate, load_template, seed_update
from server.domain.workflow import SignOffState
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.signoffs import SignOff, SignOffService, effective_state, section_hashes
from server.storage.models import Dpia, DpiaParty, Organisation, Project, ProjectParty, SignOffRow

FORMAT = "opendpia.dpia"
FORMAT_VERSION = 1
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@dataclass(frozen=True, slots=True)
class Signature:
    """A sign-off given for a party in a capacity, or a reviewing body's endorsement, read
    from its row (``party_organisation_id`` and ``capacity`` are not on ``SignOff``)."""

    id: int
    kind: str
    capacity: str
    party_organisation_id: int | None
    party: str
    signer_name: str
    signer_organisation: str
    decision: str
    conditions: str
    created_at: datetime
    target: str
    content_hash: str
    state: SignOffState


@dataclass(frozen=True, slots=True)
class RecordParty:
    """A party of the document's project, for its signature block."""

    name: str
    role: str
    organisation_id: int | None


@dataclass(frozen=True, slots=True)
class Record:
    """Everything an export shows, gathered once, for a document of any kind."""

    dpia_id: str
    title: str
    status: DpiaStatus
    lead_organisation: str
    parties: list[tuple[str, str]]
    template: Template
    content: Content
    seq: int
    signoffs: list[SignOff]
    exported_at: datetime
    kind: DocumentKind = DocumentKind.DPIA
    project: tuple[str, str] | None = None  # the project's reference and title
    project_parties: tuple[RecordParty, ...] = ()
    signatures: tuple[Signature, ...] = ()

    @property
    def content_hash(self) -> str:
        """The hash of the whole content: what a sign-off of the whole DPIA binds to."""
        return target_hash(self.template, self.content, WHOLE)

    def signoff_matches(self, signoff: SignOff) -> bool:
        """Whether what ``signoff`` bound still hashes as it did when signed."""
        return self.hash_matches(signoff.target, signoff.content_hash)

    def hash_matches(self, target: str, signed_hash: str) -> bool:
        return target_hash(self.template, self.content, target) == signed_hash

    @property
    def risks(self) -> list[dict[str, Any]]:
        return register_rows(self.template.content, self.content)


class ExportService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dpias: DpiaService,
        history: HistoryService,
        signoffs: SignOffService,
        audit: AuditTrail,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._history = history
        self._signoffs = signoffs
        self._audit = audit

    async def gather(self, user: CurrentUser, dpia_id: str) -> Record:
        access = await self._dpias.access(user, dpia_id)
        template = await self._history.template_of(dpia_id)
        current = await self._history.current(dpia_id)
        hashes = section_hashes(template, current.content)
        async with self._sessions() as session:
            document = await session.get_one(Dpia, dpia_id)
            lead = await session.get(Organisation, document.lead_organisation_id)
            parties = [
                (p.name, p.role)
                for p in await session.scalars(
                    select(DpiaParty).where(DpiaParty.dpia_id == dpia_id).order_by(DpiaParty.id)
                )
            ]
            project = (
                None
                if document.project_id is None
                else await session.get(Project, document.project_id)
            )
            project_parties: list[ProjectParty] = (
                []
                if project is None
                else list(
                    await session.scalars(
                        select(ProjectParty)
                        .where(ProjectParty.project_id == project.id)
                        .order_by(ProjectParty.id)
                    )
                )
            )
            rows = await session.scalars(
                select(SignOffRow).where(SignOffRow.dpia_id == dpia_id).order_by(SignOffRow.id)
            )
            signatures = tuple(
                _signature(row, effective_state(row, hashes[row.target]))
                for row in rows
                if row.party_organisation_id is not None or row.capacity or row.kind == ENDORSEMENT
            )
            party_rows = tuple(
                RecordParty(p.name, p.role, p.organisation_id) for p in project_parties
            )
        return Record(
            dpia_id,
            access.title,
            access.status,
            lead.name if lead else "",
            parties,
            template,
            current.content,
            current.seq,
            await self._signoffs.of_dpia(dpia_id),
            datetime.now(UTC),
            kind=DocumentKind(document.kind),
            project=None if project is None else (project.id, project.title),
            project_parties=party_rows,
            signatures=signatures,
        )

    async def export(self, user: CurrentUser, dpia_id: str, kind: str) -> tuple[bytes, str, str]:
        """The bytes, media type and file name of one export; each export is chained.

        The PDF and Word files are laid out in a worker thread: WeasyPrint takes a good
        fraction of a second for a DPIA, which the event loop must not wait for."""
        from server.services import pdf, word

        if kind not in MEDIA_TYPES:
            raise InvalidInput("Export as pdf, docx, csv or json")
        record = await self.gather(user, dpia_id)
        if kind == "csv" and not has_field(record.template, ACTION_PLAN):
            raise InvalidInput("This document has no action plan to export as CSV")
        renderers = {
            "json": to_json,
            "csv": action_plan_csv,
            "pdf": pdf.render,
            "docx": word.render,
        }
        render = renderers[kind]
        data: bytes = (
            await asyncio.to_thread(render, record) if kind in ("pdf", "docx") else render(record)
        )
        await self._audit.record(
            dpia_id,
            "export",
            actor=f"user:{user.id}",
            seq=record.seq,
            data={"summary": f"exported as {kind.upper()}", "format": kind, "bytes": len(data)},
        )
        return data, MEDIA_TYPES[kind], f"{dpia_id}.{kind}"

    async def import_json(self, user: CurrentUser, raw: bytes, lead_organisation_id: int) -> str:
        """A new DPIA (draft, owned by ``user``) equal in content to an exported one."""
        data = parse_export(raw)
        template = checked_template(data)
        state = initial_state(template, data["content"])
        dpia_id = await self._dpias.create(
            user,
            data["title"],
            lead_organisation_id,
            template_id=template.id,
            initial_state=state,
        )
        existing = {p.name for p in await self._dpias.parties(user, dpia_id)}
        for name, role in data["parties"]:
            if name not in existing:
                await self._dpias.add_party(user, dpia_id, role, name=name)
        await self._audit.record(
            dpia_id,
            "import",
            actor=f"user:{user.id}",
            seq=1,
            data={"summary": "created from a JSON export"},
        )
        return dpia_id


def _signature(row: SignOffRow, state: SignOffState) -> Signature:
    return Signature(
        row.id,
        row.kind,
        row.capacity,
        row.party_organisation_id,
        row.party,
        row.signer_name,
        row.signer_organisation,
        row.decision,
        row.conditions,
        row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC),
        row.target,
        row.content_hash,
        state,
    )


def to_json(record: Record) -> bytes:
    return dump_json({"format": FORMAT, "version": FORMAT_VERSION, **document_body(record)})


def document_body(record: Record) -> dict[str, Any]:
    """What makes a document reusable: its template, title, parties and content (a DPIA's
    export, and each document of a project's)."""
    return {
        "template": {"id": record.template.id, "version": record.template.version},
        "title": record.title,
        "parties": [{"name": name, "role": role} for name, role in record.parties],
        "content": record.content,
    }


def dump_json(body: dict[str, Any]) -> bytes:
    """Deterministic JSON (sorted keys), so that the same record gives the same bytes."""
    return (json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def parse_export(raw: bytes) -> dict[str, Any]:
    """Check an export's shape; InvalidInput says what is wrong."""
    data = parse_file(raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidInput("This is not an OpenDPIA DPIA export")
    check_format_version(data)
    return check_document(data)


def parse_file(raw: bytes) -> Any:
    """What an export file holds (a DPIA's or a project's), parsed with the depth limit."""
    try:
        return parse_json(raw)
    except ValueError:
        raise InvalidInput("The file is not JSON") from None


def check_format_version(data: dict[str, Any]) -> None:
    if data.get("version") != FORMAT_VERSION:
        raise InvalidInput(
            f"Export format version {str(data.get('version'))[:20]!r} is not supported"
        )


def check_document(data: Any) -> dict[str, Any]:
    """One document's template, title, content and parties, as a DPIA export and each
    document of a project export carry them."""
    try:
        template_ref = data["template"]
        load_template(str(template_ref["id"]))
        whole_number(template_ref["version"], "The export's template version")
        if not isinstance(data["title"], str) or not isinstance(data["content"], dict):
            raise TypeError
        parties = [(str(p["name"]), str(p["role"])) for p in data.get("parties", [])]
    except (KeyError, TypeError, UnknownTemplate):
        raise InvalidInput(
            "The export is incomplete: template, title and content are needed"
        ) from None
    return {**data, "parties": parties}


def checked_template(data: dict[str, Any]) -> Template:
    """The template an export names, at the version this installation has."""
    template = load_template(data["template"]["id"])
    if int(data["template"]["version"]) != template.version:
        raise InvalidInput(
            f"This export uses version {data['template']['version']} of the template; "
            f"this installation has version {template.version}"
        )
    return template


def initial_state(template: Template, content: Content) -> bytes:
    """The first logged update of an imported DPIA: the template's seed and the content."""
    doc: Doc[Any] = Doc()
    doc.apply_update(seed_update(template))
    try:
        with doc.transaction():
            write_content(doc, template, content)
    except (TypeError, ValueError, AttributeError) as error:
        raise InvalidInput(f"The export's content does not fit the template: {error}") from None
    written = document_content(doc, template)
    for section, fields in content.items():
        if section not in written or not isinstance(fields, dict):
            raise InvalidInput(f"The export has a section {section[:40]!r} the template lacks")
        for name, value in fields.items():
            if name not in written[section] or canonical(written[section][name]) != canonical(
                value
            ):
                raise InvalidInput(f"The field {section}.{name[:40]} does not fit the template")
    return doc.get_update()


ACTION_PLAN = "measures.plan"


def has_field(template: Template, path: str) -> bool:
    """Whether the template has the field ``section.field`` (the DPIA's risk parts)."""
    return any(f"{s['id']}.{f['id']}" == path for s in template.sections for f in s["fields"])


def action_plan_csv(record: Record) -> bytes:
    """The measures as a spreadsheet reads them: the template's column labels, and each
    value as the person chose it (labels, Yes/No, dates, the risks' refs and titles)."""
    columns = tuple(
        str(c["id"])
        for s in record.template.sections
        for f in s["fields"]
        if f"{s['id']}.{f['id']}" == ACTION_PLAN
        for c in f["columns"]
    )
    header, rows = column_cells(record.template, record.content, ACTION_PLAN, columns)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell("" if value == EMPTY_CELL else value) for value in row])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes spreadsheets read UTF-8


def _cell(text: str) -> str:
    # Spreadsheets run cells that start with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
