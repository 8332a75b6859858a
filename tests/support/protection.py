"""A partner who left traces everywhere a person can (for erasure and subject access tests),
and the means to look for those traces in every table, every stored mail and every export.

The partner's name is not ASCII on purpose: mail headers then carry it RFC 2047-encoded and
bodies quoted-printable, so a search of raw bytes alone would miss it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from pycrdt import Array, Doc, Map
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.changes import ChangeEvent
from server.domain.documents import UpdateRecord
from server.domain.ropa import EDITABLE, WHOLE_DPIA, fingerprint
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.storage.events import row_values
from server.storage.models import (
    Base,
    ChangeEventRow,
    Dpia,
    InboundAttachment,
    InboundMessage,
    Notification,
    OutboxMessage,
    RiskDecision,
    RopaConfirmation,
    RopaEntry,
)
from server.storage.updates import SqlUpdateStore

PARTNER_NAME = "Paula Pärtner"
PARTNER_EMAIL = "paula.partner@nlft.example"
PARTNER_WORDS = "The partner holds only the NHS number and the date of the visit."
OWNER_WORDS = "Which records does the partner hold?"
ATTACHMENT = b"minutes of the meeting, nothing personal"


@dataclass
class Traces:
    participant_id: int
    comment_id: str


def mail(sender: str, recipient: str, subject: str, body: str, attachment: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = f"<{hashlib.sha1(body.encode()).hexdigest()}@test.example>"
    message.set_content(body, cte="quoted-printable")
    if attachment:
        message.add_attachment(
            ATTACHMENT, maintype="text", subtype="plain", filename=f"{PARTNER_NAME} notes.txt"
        )
    return message.as_bytes()


async def _append(store: SqlUpdateStore, dpia_id: str, actor: str, change: Any) -> None:
    stored = await store.load(dpia_id)
    assert stored is not None
    doc = stored.to_doc()
    before = doc.get_state()
    with doc.transaction():
        change(doc)
    await store.append(
        [
            UpdateRecord(
                dpia_id,
                stored.last_seq + 1,
                doc.get_update(before),
                actor,
                "email" if actor.startswith("participant:") else "browser",
                "test",
                datetime.now(UTC),
            )
        ]
    )


async def leave_traces(
    sessions: async_sessionmaker[AsyncSession],
    store: SqlUpdateStore,
    dpias: DpiaService,
    audit: AuditTrail,
    owner: CurrentUser,
    dpia_id: str,
) -> Traces:
    """Invite the partner (email only) and let them comment, reply, resolve, be notified
    about, mailed and heard from, and named in an audit event, a change excerpt, the record
    of processing and the reason a proposed risk was dismissed."""
    pid = await dpias.invite(owner, dpia_id, PARTNER_EMAIL, "commenter", PARTNER_NAME)
    comment_id = "c-partner"

    def comment(doc: Doc[Any]) -> None:
        doc.get("comments", type=Map)[comment_id] = Map(
            {
                "section": "need",
                "author": pid,
                "author_name": PARTNER_NAME,
                "channel": "email",
                "text": f"{PARTNER_WORDS} Write to me at {PARTNER_EMAIL}.",
                "created": "2026-12-01T10:00:00+00:00",
                "resolved": False,
                "replies": Array(),
            }
        )
        doc.get("comments", type=Map)["c-owner"] = Map(
            {
                "section": "need",
                "author": 1,
                "author_name": owner.name,
                "channel": "browser",
                "text": OWNER_WORDS,
                "created": "2026-12-01T09:00:00+00:00",
                "resolved": False,
                "replies": Array(),
            }
        )

    def replies(doc: Doc[Any]) -> None:
        owner_comment = doc.get("comments", type=Map)["c-owner"]
        owner_comment["replies"].append(
            Map({"author": pid, "author_name": PARTNER_NAME, "text": "Only two fields."})
        )
        owner_comment["resolved"] = True
        owner_comment["resolved_by"] = PARTNER_NAME
        doc.get("comments", type=Map)[comment_id]["replies"].append(
            Map({"author": 1, "author_name": owner.name, "text": f"Thanks {PARTNER_NAME}."})
        )

    await _append(store, dpia_id, f"participant:{pid}", comment)
    await _append(store, dpia_id, f"participant:{pid}", replies)
    now = datetime.now(UTC)
    raw = mail(
        f"{PARTNER_NAME} <{PARTNER_EMAIL}>",
        f"reply+x@{dpia_id.lower()}.example",
        "Re: Step 1",
        f"{PARTNER_WORDS}\n\n-- \n{PARTNER_NAME}\nNLFT",
        attachment=True,
    )
    async with sessions.begin() as session:
        session.add(
            Notification(
                dpia_id=dpia_id,
                participant_id=1,
                kind="comment",
                section="need",
                field=None,
                actor_name=PARTNER_NAME,
                channel="email",
                excerpt=f"{PARTNER_NAME} commented",
                created_at=now,
                email="queued",
            )
        )
        session.add(
            OutboxMessage(
                message_id=f"<n1@{dpia_id.lower()}>",
                dpia_id=dpia_id,
                subject="New comment on Step 1",
                sender="OpenDPIA <n@opendpia.example>",
                recipient=PARTNER_EMAIL,
                message=mail(
                    "OpenDPIA <n@opendpia.example>",
                    f"{PARTNER_NAME} <{PARTNER_EMAIL}>",
                    f"Hello {PARTNER_NAME}",
                    f"Dear {PARTNER_NAME},\n{owner.name} asked: {OWNER_WORDS}\n",
                ),
                status="sent",
                attempts=1,
                next_attempt_at=now,
                created_at=now,
            )
        )
        inbound = InboundMessage(
            received_at=now,
            transport="smtp",
            peer="127.0.0.1",
            envelope_from=PARTNER_EMAIL,
            recipient=f"reply+x@{dpia_id.lower()}.example",
            raw=raw,
            raw_sha256=hashlib.sha256(raw).hexdigest(),
            message_key=f"key-{dpia_id}",
            status="done",
            outcome="merged",
            reason="",
            dpia_id=dpia_id,
            participant_id=pid,
            section="need",
            from_address=PARTNER_EMAIL,
            subject="Re: Step 1",
            text=PARTNER_WORDS,
            signature=PARTNER_NAME,
            set_aside=f"On Monday {owner.name} wrote: …",
        )
        session.add(inbound)
        await session.flush()
        session.add(
            InboundAttachment(
                inbound_id=inbound.id,
                dpia_id=dpia_id,
                filename=f"{PARTNER_NAME} notes.txt",
                content_type="text/plain",
                size=len(ATTACHMENT),
                sha256=hashlib.sha256(ATTACHMENT).hexdigest(),
                data=ATTACHMENT,
            )
        )
        session.add(
            ChangeEventRow(
                **row_values(
                    ChangeEvent(
                        dpia_id,
                        f"participant:{pid}",
                        "email",
                        "need.aims",
                        None,
                        now,
                        now,
                        1,
                        f"as {PARTNER_NAME} said",
                    )
                )
            )
        )
        # The record of processing: a hand entry and a confirmed entry that name them.
        lead = await session.scalar(select(Dpia.lead_organisation_id).where(Dpia.id == dpia_id))
        assert lead is not None
        named = {column: f"{PARTNER_NAME} ({PARTNER_EMAIL})" for column in EDITABLE}
        session.add(
            RopaEntry(
                organisation_id=lead,
                entry=json.dumps(named),
                created_at=now,
                updated_at=now,
            )
        )
        session.add(
            RopaConfirmation(
                organisation_id=lead,
                dpia_id=dpia_id,
                activity=WHOLE_DPIA,
                entry=json.dumps(named),
                entry_hash=fingerprint(named),
                seq=1,
                status="draft",
                confirmed_at=now,
            )
        )
        # A proposed risk dismissed for a reason that names them.
        session.add(
            RiskDecision(
                dpia_id=dpia_id,
                risk_id="matching-reidentification",
                round=0,
                outcome="dismissed",
                grounds=json.dumps(["screening.triggers=matching-combining"]),
                reason=f"{PARTNER_NAME} ({PARTNER_EMAIL}) sends counts only",
                decided_by=None,
                decided_by_name=owner.name,
                decided_at=now,
            )
        )
    await audit.record(
        dpia_id,
        "note",
        actor=f"participant:{pid}",
        channel="email",
        data={"summary": f"{PARTNER_NAME} <{PARTNER_EMAIL}> replied by email"},
    )
    return Traces(pid, comment_id)


async def database_text(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Every value of every table as text: strings as they are, bytes as UTF-8 and Latin-1,
    and each stored email decoded (headers and every text part), so an encoded name counts."""
    found: list[str] = []
    async with sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                for value in row:
                    if isinstance(value, bytes):
                        found.append(value.decode("utf-8", "replace"))
                        found.append(value.decode("latin-1"))
                        if table.name in ("outbox", "inbound_messages", "dev_mail"):
                            found.append(decoded_mail(value))
                    elif value is not None:
                        found.append(str(value))
    return "\n".join(found)


def decoded_mail(raw: bytes) -> str:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    parts = [f"{k}: {v}" for k, v in message.items()]
    for part in message.walk():
        parts.extend(f"{k}: {v}" for k, v in part.items())
        if part.get_content_maintype() == "text":
            parts.append(str(part.get_content()))  # type: ignore[attr-defined]
    return "\n".join(parts)


def traces_in(
    text: str, details: tuple[str, ...] = (PARTNER_NAME, PARTNER_EMAIL, "Pärtner")
) -> list[str]:
    """Which of a person's details (the partner's unless told) ``text`` holds (any case)."""
    lowered = text.lower()
    return [s for s in details if s.lower() in lowered]
