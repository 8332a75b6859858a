"""Source links: the ISA's fields drafted from the DPIA, and whether their source changed.

Each drafted field has a ``source_links`` row: the DPIA fields it came from, their
fingerprint (``domain.drafting.source_fingerprint``) and plain text when drafted or last
confirmed. A link whose fingerprint no longer matches the DPIA is "source changed": the ISA
shows the difference and who should look, and the ISA's valid sign-offs made before the
change go stale (an agreement signed over a DPIA that has moved on no longer says what was
signed). Confirming a link (owners and editors) takes the DPIA as it is now as its new
baseline; the stale sign-offs stay stale until their signers re-confirm them.

Checked on every DPIA change event (``on_changes``, wired in ``server.bootstrap``) and
whenever the ISA's sources are shown.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Role
from server.domain.changes import ChangeEvent
from server.domain.content import Content
from server.domain.drafting import ISA_FROM_DPIA, Mapping, source_fingerprint, source_text
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.templates import Template
from server.domain.workflow import SignOffState
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.storage.models import DocumentUpdate, Participant, SignOffRow, SourceLink

_HOW = {m.target: m.how for m in ISA_FROM_DPIA}


@dataclass(frozen=True, slots=True)
class SourceView:
    """One drafted field of an ISA and the state of its source."""

    field: str
    field_label: str
    source_document_id: str
    source_fields: list[str]
    source_labels: list[str]
    how: str
    changed: bool
    diff: list[str]  # unified diff lines of the source's plain text, when changed
    changed_by: list[str]  # names of who edited the source since the baseline
    confirmed_by: str
    confirmed_at: datetime


@dataclass(frozen=True, slots=True)
class Sources:
    """An ISA's drafted fields, and who should look at those whose source changed."""

    links: list[SourceView]
    should_look: list[str]

    @property
    def changed(self) -> list[SourceView]:
        return [link for link in self.links if link.changed]


class SourceService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dpias: DpiaService,
        history: HistoryService,
        audit: AuditTrail,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._history = history
        self._audit = audit

    async def record(
        self,
        document_id: str,
        source_document_id: str,
        template: Template,
        content: Content,
        mappings: Sequence[Mapping],
        *,
        actor: str,
    ) -> None:
        """Write (or rewrite) the links of the fields drafted by ``mappings``."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            for mapping in mappings:
                link = await session.get(SourceLink, (document_id, mapping.target))
                if link is None:
                    link = SourceLink(document_id=document_id, field=mapping.target)
                    session.add(link)
                link.source_document_id = source_document_id
                link.source_fields = json.dumps(list(mapping.sources))
                link.source_hash = source_fingerprint(content, mapping.sources)
                link.source_text = source_text(template, content, mapping.sources)
                link.confirmed_by = actor
                link.confirmed_at = now

    async def sources(self, user: CurrentUser, document_id: str) -> Sources:
        """The ISA's links as ``user`` (a participant) sees them; stale sign-offs follow."""
        await self._dpias.access(user, document_id)
        return await self.check(document_id)

    async def check(self, document_id: str) -> Sources:
        """Compare every link with its source now; make sign-offs stale if one changed."""
        async with self._sessions() as session:
            links = list(
                await session.scalars(
                    select(SourceLink)
                    .where(SourceLink.document_id == document_id)
                    .order_by(SourceLink.field)
                )
            )
        if not links:
            return Sources([], [])
        own_template = await self._history.template_of(document_id)
        order = {
            f"{s['id']}.{f['id']}": n
            for n, (s, f) in enumerate((s, f) for s in own_template.sections for f in s["fields"])
        }
        labels = {
            f"{s['id']}.{f['id']}": str(f["label"])
            for s in own_template.sections
            for f in s["fields"]
        }
        views: list[SourceView] = []
        latest_change: datetime | None = None
        cache: dict[str, tuple[Template, Content]] = {}
        for link in sorted(links, key=lambda row: order.get(row.field, len(order))):
            source_id = link.source_document_id
            if source_id not in cache:
                template = await self._history.template_of(source_id)
                cache[source_id] = (template, (await self._history.current(source_id)).content)
            template, content = cache[source_id]
            fields: list[str] = json.loads(link.source_fields)
            changed = source_fingerprint(content, fields) != link.source_hash
            diff: list[str] = []
            editors: list[str] = []
            if changed:
                now_text = source_text(template, content, fields)
                diff = list(
                    difflib.unified_diff(
                        link.source_text.splitlines(),
                        now_text.splitlines(),
                        "when drafted or confirmed",
                        "now",
                        lineterm="",
                        n=1,
                    )
                )
                editors, last = await self._editors_since(source_id, link.confirmed_at)
                if last is not None and (latest_change is None or last > latest_change):
                    latest_change = last
            views.append(
                SourceView(
                    field=link.field,
                    field_label=labels.get(link.field, link.field),
                    source_document_id=source_id,
                    source_fields=fields,
                    source_labels=[_source_label(template, path) for path in fields],
                    how=_HOW.get(link.field, ""),
                    changed=changed,
                    diff=diff,
                    changed_by=editors,
                    confirmed_by=await self._name(document_id, link.confirmed_by),
                    confirmed_at=link.confirmed_at,
                )
            )
        if any(view.changed for view in views):
            await self.stale_signoffs(document_id, before=latest_change or datetime.now(UTC))
        return Sources(views, await self._should_look(document_id))

    async def on_changes(self, events: Sequence[ChangeEvent]) -> None:
        """After change events: check every document drafted from a changed document."""
        changed = sorted({event.document_id for event in events})
        async with self._sessions() as session:
            drafted = sorted(
                set(
                    await session.scalars(
                        select(SourceLink.document_id).where(
                            SourceLink.source_document_id.in_(changed)
                        )
                    )
                )
            )
        for document_id in drafted:
            await self.check(document_id)

    async def confirm(self, user: CurrentUser, document_id: str, field: str) -> None:
        """Take the source as it is now as the link's baseline (owners and editors)."""
        access = await self._dpias.access(user, document_id)
        if not access.role.can_write:
            raise AccessDenied("Only owners and editors can confirm a changed source")
        async with self._sessions.begin() as session:
            link = await session.get(SourceLink, (document_id, field), with_for_update=True)
            if link is None:
                raise InvalidInput("That field was not drafted from another document")
            template = await self._history.template_of(link.source_document_id)
            content = (await self._history.current(link.source_document_id)).content
            fields: list[str] = json.loads(link.source_fields)
            link.source_hash = source_fingerprint(content, fields)
            link.source_text = source_text(template, content, fields)
            link.confirmed_by = f"user:{user.id}"
            link.confirmed_at = datetime.now(UTC)
            await self._audit.append(
                session,
                document_id,
                "source_confirmed",
                actor=f"user:{user.id}",
                section=field.partition(".")[0],
                data={
                    "summary": f"{user.name} confirmed the {field} answer against "
                    f"{link.source_document_id} as it is now",
                    "field": field,
                },
            )

    async def stale_signoffs(self, document_id: str, *, before: datetime) -> list[int]:
        """Mark the document's valid sign-offs made before ``before`` stale; their ids."""
        now = datetime.now(UTC)
        made_stale: list[int] = []
        async with self._sessions.begin() as session:
            rows = await session.scalars(
                select(SignOffRow).where(
                    SignOffRow.dpia_id == document_id,
                    SignOffRow.state == SignOffState.VALID.value,
                )
            )
            for row in rows:
                if _utc(row.created_at) >= _utc(before):
                    continue  # signed after the source changed: it saw the change
                row.state = SignOffState.STALE.value
                row.stale_at = now
                made_stale.append(row.id)
                await self._audit.append(
                    session,
                    document_id,
                    "signoff_stale",
                    actor="system:sources",
                    data={
                        "summary": f"Sign-off #{row.id} went stale: a DPIA answer this "
                        "agreement was drafted from changed",
                        "signoff": row.id,
                    },
                )
        return made_stale

    async def changed_count(self, document_id: str) -> int:
        """How many drafted fields' sources changed (the editor's notice). A document with
        no links costs one query: ``check`` returns at once."""
        return len((await self.check(document_id)).changed)

    async def _editors_since(
        self, document_id: str, since: datetime
    ) -> tuple[list[str], datetime | None]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(DocumentUpdate.actor, func.max(DocumentUpdate.created_at))
                    .where(
                        DocumentUpdate.document_id == document_id,
                        DocumentUpdate.created_at > since,
                    )
                    .group_by(DocumentUpdate.actor)
                )
            ).all()
        names = [await self._name(document_id, actor) for actor, _ in rows]
        last = max((_utc(moment) for _, moment in rows), default=None)
        return sorted(set(names)), last

    async def _name(self, document_id: str, actor: str) -> str:
        """A ``user:<id>`` or ``participant:<id>`` actor's name on the document's project."""
        kind, _, raw = actor.partition(":")
        if not raw.isdigit():
            return actor
        column = Participant.user_id if kind == "user" else Participant.id
        async with self._sessions() as session:
            name = await session.scalar(select(Participant.name).where(column == int(raw)).limit(1))
        return name or "someone no longer taking part"

    async def _should_look(self, document_id: str) -> list[str]:
        """The ISA's owners and its signatories."""
        async with self._sessions() as session:
            owners = await session.scalars(
                select(Participant.name).where(
                    Participant.dpia_id == document_id, Participant.role == Role.OWNER.value
                )
            )
            signers = await session.scalars(
                select(SignOffRow.signer_name).where(
                    SignOffRow.dpia_id == document_id,
                    SignOffRow.state.in_([SignOffState.VALID.value, SignOffState.STALE.value]),
                )
            )
            names = [*owners, *signers]
        return list(dict.fromkeys(n for n in names if n))


def _source_label(template: Template, path: str) -> str:
    section_id, field_id, *column = path.split(".")
    for section in template.sections:
        if section["id"] != section_id:
            continue
        for field in section["fields"]:
            if field["id"] == field_id:
                label = f"{section.get('short_title', section['title'])}: {field['label']}"
                if column:
                    spec = next(c for c in field.get("columns", []) if c["id"] == column[0])
                    label += f" ({spec['label']})"
                return label
    return path


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
