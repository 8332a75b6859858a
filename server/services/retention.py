"""Retention and deletion of DPIAs (decision 92): each organisation's retention period, the
expiry of closed DPIAs, archiving the expired ones, and purging a DPIA down to a tombstone.

A purge deletes every row about the DPIA, in one transaction: its document (update log,
snapshots, change events), the record (parties, participants and their notifications,
watches, reviewers, mail preferences, mail health, reply tokens), sign-offs and section
states, its audit chain, the mail sent about it (outbox) and the email received for it
(inbound messages and attachments). What stays is one ``deleted_dpias`` row: the
reference, the lead organisation's code, the status it had, the rule, who and when, and how
many rows of each kind went. Newer versions started from it keep their content and lose
only the link to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.dpias import DpiaStatus
from server.domain.errors import DocumentNotFound
from server.domain.protection import CLOSED, DeletionRule, expires_at
from server.services.admin_audit import ChangeRecorder, log_change
from server.services.audit import AuditTrail
from server.storage.models import (
    AuditEvent,
    ChangeEventRow,
    DeletedDpia,
    Document,
    DocumentSnapshot,
    DocumentUpdate,
    Dpia,
    DpiaParty,
    InboundAttachment,
    InboundMessage,
    MailHealth,
    MailPreference,
    Notification,
    Organisation,
    OutboxMessage,
    Participant,
    ReplyToken,
    ReviewAnswers,
    RiskDecision,
    SectionReviewer,
    SectionState,
    SectionWatch,
    SignOffRow,
)

RETENTION_ACTOR = "system:retention"


@dataclass(frozen=True, slots=True)
class RetentionView:
    """A DPIA's place in its retention: when it closed, for how long it is kept, and when
    that ends (None while it is open)."""

    dpia_id: str
    status: DpiaStatus
    organisation: str
    months: int
    closed_at: datetime | None
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Tombstone:
    reference: str
    organisation: str
    status: str
    rule: str
    deleted_by: str
    deleted_at: datetime
    records: dict[str, int]


class RetentionService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        audit: AuditTrail,
        default_months: int,
        *,
        on_change: ChangeRecorder = log_change,
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self.default_months = default_months
        # A change of an organisation's period is an administrative change: the
        # deployment's administration chain records it, in the same transaction.
        self._on_change = on_change

    async def months_of(self, code: str) -> int:
        async with self._sessions() as session:
            org = await session.scalar(select(Organisation).where(Organisation.code == code))
        if org is None:
            raise DocumentNotFound(f"There is no organisation {code!r}")
        return org.retention_months or self.default_months

    async def set_months(
        self, code: str, months: int | None, *, actor: str = "cli", channel: str = "cli"
    ) -> None:
        """Set the organisation's period (None: back to the deployment's default)."""
        async with self._sessions.begin() as session:
            org = await session.scalar(select(Organisation).where(Organisation.code == code))
            if org is None:
                raise DocumentNotFound(f"There is no organisation {code!r}")
            before, org.retention_months = org.retention_months, months
            if before != months:
                await self._on_change(
                    session,
                    "retention_changed",
                    actor=actor,
                    channel=channel,
                    organisation_id=org.id,
                    data={
                        "before": {
                            "retention_months": before or f"default ({self.default_months})"
                        },
                        "after": {"retention_months": months or f"default ({self.default_months})"},
                    },
                )

    async def views(self, *where: ColumnElement[bool]) -> list[RetentionView]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Dpia.id,
                        Dpia.status,
                        Dpia.closed_at,
                        Organisation.code,
                        Organisation.retention_months,
                    )
                    .join(Organisation, Organisation.id == Dpia.lead_organisation_id)
                    .where(*where)
                    .order_by(Dpia.id)
                )
            ).all()
        views = []
        for row in rows:
            months = row.retention_months or self.default_months
            status = DpiaStatus(row.status)
            closed = _utc(row.closed_at)
            views.append(
                RetentionView(
                    row.id, status, row.code, months, closed, expires_at(status, closed, months)
                )
            )
        return views

    async def expiries(self, dpia_ids: list[str]) -> dict[str, datetime]:
        """When the retention of each closed DPIA among ``dpia_ids`` ends (the dashboard)."""
        if not dpia_ids:
            return {}
        views = await self.views(Dpia.id.in_(dpia_ids))
        return {v.dpia_id: v.expires_at for v in views if v.expires_at is not None}

    async def view(self, dpia_id: str) -> RetentionView:
        found = await self.views(Dpia.id == dpia_id)
        if not found:
            raise DocumentNotFound("There is no such DPIA")
        return found[0]

    async def expired(self, now: datetime) -> list[RetentionView]:
        """Closed DPIAs whose retention has ended: the list for deletion."""
        closed = await self.views(Dpia.status.in_([s.value for s in CLOSED]))
        return [v for v in closed if v.expired(now)]

    async def archive(self, dpia_id: str) -> bool:
        """Archive an expired closed DPIA (True if its status changed): it stays, read-only,
        until an owner confirms its deletion. ``closed_at`` is kept, so archiving does not
        restart its retention."""
        async with self._sessions.begin() as session:
            # Locked: every web process runs the keeper, and only one may archive it.
            dpia = await session.scalar(
                select(Dpia)
                .where(Dpia.id == dpia_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if dpia is None or dpia.status == DpiaStatus.ARCHIVED.value:
                return False
            old = DpiaStatus(dpia.status)
            dpia.status = DpiaStatus.ARCHIVED.value
            await self._audit.append(
                session,
                dpia_id,
                "status",
                actor=RETENTION_ACTOR,
                channel="system",
                data={
                    "summary": f"{old.label} → Archived: retention period ended",
                    "from": old.value,
                    "to": DpiaStatus.ARCHIVED.value,
                },
            )
            return True

    async def purge(self, dpia_id: str, rule: DeletionRule, deleted_by: str) -> Tombstone:
        """Delete every row about the DPIA and leave its tombstone, in one transaction."""
        async with self._sessions.begin() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                raise DocumentNotFound("There is no such DPIA")
            code = await session.scalar(
                select(Organisation.code).where(Organisation.id == dpia.lead_organisation_id)
            )
            records = await _delete_all(session, dpia_id)
            tombstone = Tombstone(
                dpia_id,
                code or "",
                dpia.status,
                rule.value,
                deleted_by,
                datetime.now(UTC),
                records,
            )
            session.add(
                DeletedDpia(
                    reference=tombstone.reference,
                    organisation=tombstone.organisation,
                    status=tombstone.status,
                    rule=tombstone.rule,
                    deleted_by=deleted_by,
                    deleted_at=tombstone.deleted_at,
                    records=json.dumps(records, sort_keys=True),
                )
            )
        return tombstone

    async def tombstones(self) -> list[Tombstone]:
        async with self._sessions() as session:
            rows = await session.scalars(select(DeletedDpia).order_by(DeletedDpia.id))
            return [
                Tombstone(
                    r.reference,
                    r.organisation,
                    r.status,
                    r.rule,
                    r.deleted_by,
                    _utc(r.deleted_at) or r.deleted_at,
                    json.loads(r.records),
                )
                for r in rows
            ]


async def _delete_all(session: AsyncSession, dpia_id: str) -> dict[str, int]:
    """Delete the DPIA's rows, children first (SQLite may not enforce cascades)."""
    participants = select(Participant.id).where(Participant.dpia_id == dpia_id)
    inbound = select(InboundMessage.id).where(InboundMessage.dpia_id == dpia_id)
    steps: list[tuple[str, Any]] = [
        ("notifications", delete(Notification).where(Notification.dpia_id == dpia_id)),
        ("reply_tokens", delete(ReplyToken).where(ReplyToken.dpia_id == dpia_id)),
        (
            "section_watches",
            delete(SectionWatch).where(SectionWatch.participant_id.in_(participants)),
        ),
        (
            "section_reviewers",
            delete(SectionReviewer).where(SectionReviewer.participant_id.in_(participants)),
        ),
        (
            "mail_preferences",
            delete(MailPreference).where(MailPreference.participant_id.in_(participants)),
        ),
        ("mail_health", delete(MailHealth).where(MailHealth.participant_id.in_(participants))),
        (
            "inbound_attachments",
            delete(InboundAttachment).where(
                (InboundAttachment.dpia_id == dpia_id) | InboundAttachment.inbound_id.in_(inbound)
            ),
        ),
        ("inbound_messages", delete(InboundMessage).where(InboundMessage.dpia_id == dpia_id)),
        ("outbox", delete(OutboxMessage).where(OutboxMessage.dpia_id == dpia_id)),
        ("signoffs", delete(SignOffRow).where(SignOffRow.dpia_id == dpia_id)),
        ("section_states", delete(SectionState).where(SectionState.dpia_id == dpia_id)),
        ("risk_decisions", delete(RiskDecision).where(RiskDecision.dpia_id == dpia_id)),
        ("review_answers", delete(ReviewAnswers).where(ReviewAnswers.dpia_id == dpia_id)),
        ("audit_events", delete(AuditEvent).where(AuditEvent.dpia_id == dpia_id)),
        ("participants", delete(Participant).where(Participant.dpia_id == dpia_id)),
        ("dpia_parties", delete(DpiaParty).where(DpiaParty.dpia_id == dpia_id)),
        ("change_events", delete(ChangeEventRow).where(ChangeEventRow.document_id == dpia_id)),
        ("document_updates", delete(DocumentUpdate).where(DocumentUpdate.document_id == dpia_id)),
        (
            "document_snapshots",
            delete(DocumentSnapshot).where(DocumentSnapshot.document_id == dpia_id),
        ),
    ]
    records: dict[str, int] = {}
    for table, statement in steps:
        result = await session.execute(statement)
        records[table] = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(update(Dpia).where(Dpia.origin_id == dpia_id).values(origin_id=None))
    await session.execute(delete(Dpia).where(Dpia.id == dpia_id))
    await session.execute(delete(Document).where(Document.id == dpia_id))
    records["dpias"] = 1
    return records


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
