"""Versions and the human history of a DPIA, derived from the update log and the events.

The log keeps every accepted update (snapshots only speed loading), so the document as it
was at sequence number *n* is the updates 1…n applied in order. Edit sessions are runs of
one actor's updates through one channel with no pause longer than ``SESSION_GAP``; which
fields a session changed is read by comparing the canonical content before and after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pycrdt import Doc, Map
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.content import Content, changed_fields, document_content
from server.domain.documents import UpdateRecord, root_names
from server.domain.errors import DocumentNotFound, InvalidInput
from server.domain.readable import field_text
from server.domain.templates import Template
from server.domain.wording import ROLES_IN_TEXT, label
from server.services.audit import AuditTrail
from server.services.template_library import TemplateLibrary
from server.storage.models import Dpia, Participant, User
from server.storage.updates import SqlUpdateStore

SESSION_GAP = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Version:
    seq: int
    content: Content
    doc: Doc[Any]


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str
    label: str
    before: str
    after: str


@dataclass(slots=True)
class TimelineItem:
    at: datetime
    kind: str  # edit | comment | invitation | status | signoff | export | …
    actor: str
    channel: str
    summary: str
    sections: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    size: int = 0


class HistoryService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: SqlUpdateStore,
        audit: AuditTrail,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._audit = audit

    async def template_of(self, dpia_id: str) -> Template:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Dpia.template_id, Dpia.template_version).where(Dpia.id == dpia_id)
                )
            ).first()
        if row is None:
            raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
        return await TemplateLibrary(self._sessions).template(row[0], row[1])

    async def last_seqs(self, dpia_ids: Sequence[str]) -> dict[str, int]:
        """How far each document's log has reached (no update is read)."""
        return await self._store.last_seqs(dpia_ids)

    async def current(self, dpia_id: str) -> Version:
        """The committed document now."""
        stored = await self._store.load(dpia_id)
        if stored is None:
            raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
        template = await self.template_of(dpia_id)

        def build() -> Version:
            doc = stored.to_doc()
            return Version(stored.last_seq, document_content(doc, template), doc)

        return await asyncio.to_thread(build)

    async def version(self, dpia_id: str, seq: int) -> Version:
        """The document as it was once update ``seq`` was applied (read-only)."""
        if seq < 1:
            raise InvalidInput("A version is a sequence number of 1 or more")
        template = await self.template_of(dpia_id)
        updates = await self._store.updates(dpia_id, upto_seq=seq)
        if not updates or updates[-1].seq < seq:
            raise InvalidInput(f"This DPIA has no version {seq}")

        def build() -> Version:
            doc: Doc[Any] = Doc()
            for record in updates:
                doc.apply_update(record.update)
            return Version(seq, document_content(doc, template), doc)

        return await asyncio.to_thread(build)

    async def compare(self, dpia_id: str, older: int, newer: int) -> list[FieldChange]:
        template = await self.template_of(dpia_id)
        before = await self.version(dpia_id, older)
        after = await self.version(dpia_id, newer)
        return field_changes(template, before.content, after.content)

    async def timeline(self, dpia_id: str, section: str | None = None) -> list[TimelineItem]:
        """Everything that happened to a DPIA (or one section), newest first."""
        template = await self.template_of(dpia_id)
        updates = await self._store.updates(dpia_id)
        names = await self._names(dpia_id)
        items = await asyncio.to_thread(_edit_sessions, updates, template, names)
        current = await self.current(dpia_id)
        items += _comments(current.doc, names)
        items += await self._invitations(dpia_id, names)
        for entry in await self._audit.entries(dpia_id):
            record = entry.record
            data = entry.data
            items.append(
                TimelineItem(
                    at=_utc(record.at),
                    kind=record.kind,
                    actor=names.get(record.actor, record.actor),
                    channel=record.channel,
                    summary=str(data.get("summary", record.kind)),
                    sections=[record.section] if record.section else [],
                    first_seq=record.seq or None,
                )
            )
        if section is not None:
            items = [i for i in items if section in i.sections]
        items.sort(key=lambda i: i.at, reverse=True)
        return items

    async def _names(self, dpia_id: str) -> dict[str, str]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    Participant.id, Participant.user_id, Participant.name, Participant.email
                ).where(Participant.dpia_id == dpia_id)
            )
            names: dict[str, str] = {}
            for pid, user_id, name, email in rows:
                names[f"participant:{pid}"] = name
                names[str(pid)] = name
                names[f"email:{email}"] = name
                if user_id is not None:
                    names[f"user:{user_id}"] = name
            for user_id, name in await session.execute(select(User.id, User.name)):
                names.setdefault(f"user:{user_id}", name)
        return names

    async def _invitations(self, dpia_id: str, names: dict[str, str]) -> list[TimelineItem]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Participant).where(
                    Participant.dpia_id == dpia_id, Participant.invited_by.is_not(None)
                )
            )
            return [
                TimelineItem(
                    at=_utc(p.created_at),
                    kind="invitation",
                    actor=names.get(f"user:{p.invited_by}", "someone"),
                    channel="browser",
                    summary=f"Invited {p.name} as {label(ROLES_IN_TEXT, p.role)}",
                )
                for (p,) in rows
            ]


def field_changes(template: Template, before: Content, after: Content) -> list[FieldChange]:
    labels = {
        f"{s['id']}.{f['id']}": f"{s['title']} — {f['label']}"
        for s in template.sections
        for f in s["fields"]
    }
    changes = []
    for path in changed_fields(before, after):
        section, name = path.split(".", 1)
        changes.append(
            FieldChange(
                path,
                labels.get(path, path),
                field_text(template, before, section, name),
                field_text(template, after, section, name),
            )
        )
    return changes


def _edit_sessions(
    updates: Sequence[UpdateRecord], template: Template, names: dict[str, str]
) -> list[TimelineItem]:
    doc: Doc[Any] = Doc()
    items: list[TimelineItem] = []
    run: list[UpdateRecord] = []
    before: Content = document_content(doc, template)

    def close_run() -> None:
        nonlocal before
        if not run:
            return
        after = document_content(doc, template)
        changed = changed_fields(before, after)
        before = after
        first, last = run[0], run[-1]
        created = first.seq == 1
        items.append(
            TimelineItem(
                at=_utc(first.created_at),
                kind="created" if created else "edit",
                actor=names.get(first.actor, first.actor),
                channel=first.channel,
                summary=(
                    _created(first.origin, template)
                    if created
                    else f"{len(changed)} field{'s' if len(changed) != 1 else ''}"
                    f" in {len(run)} change{'s' if len(run) != 1 else ''}"
                    f" until {_utc(last.created_at):%H:%M:%S}"
                ),
                sections=sorted({p.split(".", 1)[0] for p in changed}),
                fields=changed,
                first_seq=first.seq,
                last_seq=last.seq,
                size=sum(len(r.update) for r in run),
            )
        )
        run.clear()

    for record in updates:
        if run and (
            record.actor != run[-1].actor
            or record.channel != run[-1].channel
            or run[0].seq == 1
            or _utc(record.created_at) - _utc(run[-1].created_at) > SESSION_GAP
        ):
            close_run()
        doc.apply_update(record.update)
        run.append(record)
    close_run()
    return items


def _created(origin: str, template: Template) -> str:
    """Where a DPIA came from, as its history says it (the origin is the update log's)."""
    kind, _, source = origin.partition(":")
    if kind == "template":
        return f"From the template “{template.title}”"
    if kind == "clone":
        return f"From {source}"
    return "Created"


def _comments(doc: Doc[Any], names: dict[str, str]) -> list[TimelineItem]:
    items: list[TimelineItem] = []
    if "comments" not in root_names(doc):
        return items
    for comment in doc.get("comments", type=Map).values():
        if not isinstance(comment, Map):
            continue
        entries = [comment, *[r for r in (comment.get("replies") or []) if isinstance(r, Map)]]
        section = str(comment.get("section") or "")
        for entry in entries:
            try:
                at = datetime.fromisoformat(str(entry.get("created")))
            except ValueError:
                continue
            text = " ".join(str(entry.get("text") or "").split())
            items.append(
                TimelineItem(
                    at=_utc(at),
                    kind="comment" if entry is comment else "reply",
                    actor=str(entry.get("author_name") or "someone"),
                    channel=str(entry.get("channel") or "browser"),
                    summary=text[:200],
                    sections=[section] if section else [],
                )
            )
    return items


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
