"""Everything held about one person, for a subject access request (decision 95).

Found by address: the account and its memberships, each participation, the comments and
replies they wrote (read from each DPIA's document, by participant id), the versions they
made (the update log's attribution, not its bytes) and the changes derived from them, their
sign-offs, the audit events they are the actor of, the notifications they received, the
mail sent to them and the email received from them with its attachments. Nothing about
other people is added: a comment thread contributes only the person's own entries.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pycrdt import Array, Map
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import DocumentNotFound
from server.domain.people import normalise_email
from server.storage.models import (
    AuditEvent,
    ChangeEventRow,
    DocumentUpdate,
    Dpia,
    InboundAttachment,
    InboundMessage,
    Membership,
    Notification,
    Organisation,
    OutboxMessage,
    Participant,
    SignOffRow,
    User,
)
from server.storage.updates import SqlUpdateStore


@dataclass
class SubjectAccess:
    """The export: ``data`` becomes ``person.json``; ``files`` are attachments by path."""

    data: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(self.data, indent=2, ensure_ascii=False, default=_json).encode()

    def to_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("person.json", self.to_json())
            for path, data in sorted(self.files.items()):
                archive.writestr(path, data)
        return buffer.getvalue()


class SubjectAccessService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: SqlUpdateStore) -> None:
        self._sessions = sessions
        self._store = store

    async def export(self, raw_email: str) -> SubjectAccess:
        email = normalise_email(raw_email)
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
            who = Participant.email == email
            if user is not None:
                who = or_(who, Participant.user_id == user.id)
            participants = (
                await session.scalars(select(Participant).where(who).order_by(Participant.id))
            ).all()
            if user is None and not participants:
                raise DocumentNotFound(f"Nothing is held about {email}")
            pids = [p.id for p in participants]
            actors = [f"participant:{p}" for p in pids] + (
                [f"user:{user.id}"] if user is not None else []
            )
            data: dict[str, Any] = {"email": email, "exported_for": "subject access request"}
            data["account"] = await _account(session, user)
            data["participations"] = await _participations(session, participants)
            data["versions"] = _rows(
                await session.scalars(
                    select(DocumentUpdate)
                    .where(DocumentUpdate.actor.in_(actors))
                    .order_by(DocumentUpdate.document_id, DocumentUpdate.seq)
                ),
                "document_id seq channel created_at",
            )
            data["changes"] = _rows(
                await session.scalars(
                    select(ChangeEventRow)
                    .where(ChangeEventRow.actor.in_(actors))
                    .order_by(ChangeEventRow.id)
                ),
                "document_id field row first_at last_at edits excerpt",
            )
            data["sign_offs"] = _rows(
                await session.scalars(
                    select(SignOffRow)
                    .where(
                        or_(
                            SignOffRow.signer_participant_id.in_(pids),
                            SignOffRow.signer_user_id == (user.id if user else -1),
                        )
                    )
                    .order_by(SignOffRow.id)
                ),
                "dpia_id target kind signer_name signer_role decision conditions reasons seq "
                "content_hash state created_at",
            )
            data["audit_events"] = _rows(
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.actor.in_(actors))
                    .order_by(AuditEvent.dpia_id, AuditEvent.position)
                ),
                "dpia_id position kind channel section at data",
            )
            data["notifications"] = _rows(
                await session.scalars(
                    select(Notification)
                    .where(Notification.participant_id.in_(pids))
                    .order_by(Notification.id)
                ),
                "dpia_id kind section field actor_name excerpt created_at read_at email",
            )
            sent = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient == email)
                    .order_by(OutboxMessage.id)
                )
            ).all()
            data["mail_sent"] = [
                {
                    **_row(m, "dpia_id subject status created_at sent_at"),
                    "message": m.message.decode("utf-8", "replace"),
                }
                for m in sent
            ]
            received = (
                await session.scalars(
                    select(InboundMessage)
                    .where(
                        or_(
                            InboundMessage.envelope_from == email,
                            InboundMessage.from_address == email,
                            InboundMessage.participant_id.in_(pids),
                        )
                    )
                    .order_by(InboundMessage.id)
                )
            ).all()
            attachments = (
                await session.scalars(
                    select(InboundAttachment)
                    .where(InboundAttachment.inbound_id.in_([m.id for m in received]))
                    .order_by(InboundAttachment.id)
                )
            ).all()
        export = SubjectAccess(data)
        data["mail_received"] = []
        for message in received:
            entry = _row(
                message,
                "dpia_id received_at from_address subject text signature set_aside outcome reason",
            )
            entry["attachments"] = []
            for attachment in (a for a in attachments if a.inbound_id == message.id):
                path = f"attachments/{attachment.id}-{attachment.filename}"
                export.files[path] = attachment.data
                entry["attachments"].append(
                    {"file": path, "content_type": attachment.content_type, "size": attachment.size}
                )
            data["mail_received"].append(entry)
        data["comments"] = await self._comments(participants)
        return export

    async def _comments(self, participants: Any) -> list[dict[str, Any]]:
        """The person's comments and replies, read from each DPIA's document by their
        participant id: their own words, never the rest of a thread."""
        found: list[dict[str, Any]] = []
        for participant in participants:
            stored = await self._store.load(participant.dpia_id)
            if stored is None:
                continue
            comments = stored.to_doc().get("comments", type=Map)
            for comment_id, comment in comments.items():
                if not isinstance(comment, Map):
                    continue
                base = {"dpia_id": participant.dpia_id, "comment_id": comment_id}
                if comment.get("author") == participant.id:
                    found.append({**base, "kind": "comment", **_entry(comment)})
                replies = comment.get("replies")
                for reply in replies if isinstance(replies, Array) else []:
                    if isinstance(reply, Map) and reply.get("author") == participant.id:
                        found.append({**base, "kind": "reply", **_entry(reply)})
        return found


async def _account(session: AsyncSession, user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    memberships = await session.execute(
        select(Organisation.code, Organisation.name, Membership.role)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(Membership.user_id == user.id)
    )
    return {
        **_row(user, "email name active created_at"),
        "memberships": [{"organisation": c, "name": n, "role": r} for c, n, r in memberships],
    }


async def _participations(session: AsyncSession, participants: Any) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Dpia.id, Dpia.title).where(Dpia.id.in_([p.dpia_id for p in participants]))
    )
    titles = {dpia_id: title for dpia_id, title in rows}
    return [
        {
            **_row(p, "dpia_id name email role created_at"),
            "title": titles.get(p.dpia_id),
        }
        for p in participants
    ]


def _entry(entry: Map[Any]) -> dict[str, Any]:
    return {
        key: entry.get(key)
        for key in ["section", "field", "author_name", "channel", "text", "created"]
        if key in entry
    }


def _row(row: object, names: str) -> dict[str, Any]:
    """The columns ``names`` (space-separated) of ``row``."""
    return {name: getattr(row, name) for name in names.split()}


def _rows(rows: Any, names: str) -> list[dict[str, Any]]:
    return [_row(row, names) for row in rows]


def _json(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
