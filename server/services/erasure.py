"""Erasing a person (decision 93): their names and address become a stable pseudonym in every
row that holds them, and the audit chains of their DPIAs record the erasure.

``find`` says who the person is to the rules (``domain.protection.erase_policy``);
``rewrite_document`` rewrites one DPIA's update log (the caller keeps its room closed
meanwhile); ``erase`` rewrites the SQL rows in one transaction: the account (signed out,
unable to sign in, memberships ended), participations, notifications, change excerpts,
section states, sign-offs, decisions on proposed risks, mail sent (outbox) and received
(inbound messages and their attachments' names), the development mailbox, and each DPIA's
audit chain and the administration's (``admin_audit``), where an ``erasure`` event names
the redacted events. One ``erasures`` row records it by pseudonym.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.content import document_content, plain_text
from server.domain.errors import Conflict, DocumentNotFound
from server.domain.people import normalise_email
from server.domain.protection import (
    Erasable,
    Eraser,
    pseudonym,
    pseudonym_code,
    pseudonymous_address,
    redactor,
)
from server.domain.ropa import fingerprint
from server.domain.yupdates import rewrite_strings
from server.mail.redact import redact_message
from server.services.admin_audit import AdminAuditTrail
from server.services.audit import AuditTrail
from server.services.template_library import TemplateLibrary
from server.storage.models import (
    AuditEvent,
    AutoAnswer,
    ChangeEventRow,
    DevMail,
    DocumentUpdate,
    Dpia,
    Erasure,
    InboundAttachment,
    InboundMessage,
    LoginFailure,
    MailHealth,
    Membership,
    Notification,
    OutboxMessage,
    Participant,
    PasswordReset,
    PasswordResetRequest,
    ReplyToken,
    RiskDecision,
    RopaConfirmation,
    RopaEntry,
    SearchIndexRow,
    SectionState,
    SignOffReminder,
    SignOffRow,
    User,
    UserSession,
)
from server.storage.updates import SqlUpdateStore

Rewrite = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone to erase, found by address: what the rule needs, and what to replace."""

    email: str
    user_id: int | None
    names: frozenset[str]
    facts: Erasable
    code: str

    @property
    def pseudonym(self) -> str:
        return pseudonym(self.code)

    def rewrite(self) -> Rewrite:
        return redactor(self.names, [self.email], self.code)


@dataclass
class ErasureReport:
    pseudonym: str
    dpias: list[str]
    records: dict[str, int] = field(default_factory=dict)
    # Fields whose typed text still names the person ("DPIA-…: need.aims"): the owners' to edit.
    still_named: list[str] = field(default_factory=list)

    def count(self, table: str, n: int = 1) -> None:
        if n:
            self.records[table] = self.records.get(table, 0) + n


class ErasureService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: SqlUpdateStore,
        audit: AuditTrail,
        admin_audit: AdminAuditTrail,
        secret_key: str,
    ) -> None:
        self._sessions = self.sessions = sessions
        self._store = store
        self._audit = audit
        self._admin_audit = admin_audit
        self._key = secret_key

    async def find(self, raw_email: str) -> Person:
        """The person with this address (an account, or an email-only participant)."""
        email = normalise_email(raw_email)
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
            user_id = user.id if user is not None else None
            who = Participant.email == email
            if user_id is not None:
                who = or_(who, Participant.user_id == user_id)
            participants = (await session.scalars(select(Participant).where(who))).all()
            organisations = (
                await session.scalars(
                    select(Membership.organisation_id).where(Membership.user_id == user_id)
                )
                if user_id is not None
                else None
            )
            dpias = {p.dpia_id for p in participants} | await _traced(session, email, user_id)
            existing = (
                await session.execute(
                    select(Dpia.id, Dpia.lead_organisation_id).where(Dpia.id.in_(dpias))
                )
            ).all()
            owned = [p.dpia_id for p in participants if p.role == "owner"]
            owners = dict(
                (
                    await session.execute(
                        select(Participant.dpia_id, func.count())
                        .where(Participant.dpia_id.in_(owned), Participant.role == "owner")
                        .group_by(Participant.dpia_id)
                    )
                ).all()
            )
        if user is None and not participants and not existing:
            raise DocumentNotFound(f"Nobody with the address {email} is known here")
        names = {p.name for p in participants} | ({user.name} if user is not None else set())
        return Person(
            email,
            user_id,
            frozenset(names),
            Erasable(
                has_account=user is not None,
                organisations=frozenset(organisations or ()),
                dpias=frozenset(dpia_id for dpia_id, _ in existing),
                dpia_organisations=frozenset(lead for _, lead in existing),
                sole_owner_of=frozenset(d for d in owned if owners.get(d, 0) <= 1),
            ),
            pseudonym_code(self._key, email),
        )

    async def rewrite_document(self, dpia_id: str, rewrite: Rewrite) -> int:
        """Rewrite the strings of the DPIA's update log, then snapshot it afresh; the number
        of updates changed. The caller keeps the DPIA's room unloaded meanwhile."""
        try:
            changed = await self._store.rewrite_log(
                dpia_id, lambda update: rewrite_strings(update, rewrite)
            )
        except ValueError as error:  # the log's transaction rolled back: nothing changed
            raise Conflict(
                f"The history of {dpia_id} could not be read for the erasure ({error}); "
                "nothing was erased yet. Running the erasure again is safe"
            ) from None
        await self._store.compact(dpia_id)
        return changed

    async def still_named(self, dpia_id: str, rewrite: Rewrite) -> list[str]:
        """The fields of the DPIA whose text still names the person (typed text, which
        erasure leaves to the owners), as ``section.field``."""
        stored = await self._store.load(dpia_id)
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Dpia.template_id, Dpia.template_version).where(Dpia.id == dpia_id)
                )
            ).first()
        if stored is None or row is None:
            return []
        template = await TemplateLibrary(self._sessions).template(row[0], row[1])
        content = document_content(stored.to_doc(), template)
        return [
            f"{section}.{name}"
            for section, fields in content.items()
            for name, value in fields.items()
            if rewrite(plain_text(value)) != plain_text(value)
        ]

    async def erase(
        self, person: Person, *, erased_by: str, channel: str, rule: str, updates: int = 0
    ) -> ErasureReport:
        """Rewrite every SQL row that holds the person, in one transaction."""
        rewrite = person.rewrite()
        dpias = sorted(person.facts.dpias)
        report = ErasureReport(person.pseudonym, dpias)
        report.count("document_updates", updates)
        address = pseudonymous_address(person.code)
        async with self._sessions.begin() as session:
            # The administration's chain first, as administrative changes lock it first:
            # both then take the people's rows in the same order, and cannot deadlock.
            await self._admin_audit.lock(session)
            await self._account(session, person, address, report)
            for participant in await session.scalars(
                select(Participant).where(Participant.dpia_id.in_(dpias))
            ):
                if participant.email == person.email or (
                    person.user_id is not None and participant.user_id == person.user_id
                ):
                    participant.name, participant.email = person.pseudonym, address
                    report.count("participants")
                    for token in await session.scalars(
                        select(ReplyToken).where(ReplyToken.participant_id == participant.id)
                    ):
                        token.revoked = True
            in_dpias = [
                (Notification, Notification.dpia_id, ("actor_name", "excerpt")),
                (ChangeEventRow, ChangeEventRow.document_id, ("excerpt",)),
                (SectionState, SectionState.dpia_id, ("changed_by", "reasons")),
                (
                    SignOffRow,
                    SignOffRow.dpia_id,
                    ("signer_name", "conditions", "reasons", "party"),
                ),
                (Dpia, Dpia.id, ("title",)),
                # Who decided a proposed risk, and a dismissal's reason in their words.
                (RiskDecision, RiskDecision.dpia_id, ("decided_by_name", "reason")),
                # The full-text index follows its row (FTS5 triggers, a generated tsvector).
                (SearchIndexRow, SearchIndexRow.document_id, ("title", "body", "comments")),
            ]
            for model, column, names in in_dpias:
                for row in await session.scalars(select(model).where(column.in_(dpias))):
                    report.count(model.__tablename__, _rewrite_columns(row, names, rewrite))
            await self._record_of_processing(session, person, dpias, rewrite, report)
            await self._mail(session, person, dpias, rewrite, report)
            for dpia_id in dpias:
                redacted = await self._audit.redact(
                    session,
                    dpia_id,
                    rewrite,
                    actor=erased_by,
                    channel=channel,
                    details={
                        "summary": f"{person.pseudonym} erased ({rule})",
                        "rule": rule,
                        "pseudonym": person.pseudonym,
                        "records": dict(sorted(report.records.items())),
                    },
                )
                report.count("audit_events", len(redacted))
            redacted = await self._admin_audit.redact(
                session,
                rewrite,
                actor=erased_by,
                channel=channel,
                details={
                    "summary": f"{person.pseudonym} erased ({rule})",
                    "rule": rule,
                    "pseudonym": person.pseudonym,
                    "dpias": len(dpias),
                },
            )
            report.count("admin_audit_events", len(redacted))
            session.add(
                Erasure(
                    pseudonym=person.pseudonym,
                    rule=rule,
                    erased_by=erased_by,
                    erased_at=datetime.now(UTC),
                    records=json.dumps(report.records, sort_keys=True),
                )
            )
        return report

    async def _account(
        self, session: AsyncSession, person: Person, address: str, report: ErasureReport
    ) -> None:
        if person.user_id is not None:
            user = await session.get_one(User, person.user_id)
            user.name, user.email = person.pseudonym, address
            user.password_hash, user.active = "!erased", False
            report.count("users")
            for model, column in (
                (Membership, Membership.user_id),
                (UserSession, UserSession.user_id),
                (PasswordReset, PasswordReset.user_id),
            ):
                result = await session.execute(delete(model).where(column == person.user_id))
                report.count(model.__tablename__, int(getattr(result, "rowcount", 0) or 0))
        by_address: list[tuple[str, Any]] = [
            ("login_failures", delete(LoginFailure).where(LoginFailure.email == person.email)),
            (
                "password_reset_requests",
                delete(PasswordResetRequest).where(PasswordResetRequest.email == person.email),
            ),
            ("auto_answers", delete(AutoAnswer).where(AutoAnswer.address == person.email)),
            (
                "signoff_reminders",
                delete(SignOffReminder).where(SignOffReminder.address == person.email),
            ),
        ]
        for table, statement in by_address:
            result = await session.execute(statement)
            report.count(table, int(getattr(result, "rowcount", 0) or 0))

    async def _record_of_processing(
        self,
        session: AsyncSession,
        person: Person,
        dpias: list[str],
        rewrite: Rewrite,
        report: ErasureReport,
    ) -> None:
        """The RoPA's confirmed columns of the person's DPIAs (re-fingerprinted, so an entry
        confirmed before stays confirmed against the rewritten DPIA) and the hand entries
        of every organisation, which may name anyone."""
        for confirmation in await session.scalars(
            select(RopaConfirmation).where(RopaConfirmation.dpia_id.in_(dpias))
        ):
            values = _rewrite_json_values(confirmation.entry, rewrite)
            if values is not None:
                confirmation.entry = json.dumps(values)
                confirmation.entry_hash = fingerprint(values)
                report.count("ropa_confirmations")
        for entry in await session.scalars(select(RopaEntry)):
            values = _rewrite_json_values(entry.entry, rewrite)
            if values is not None:
                entry.entry = json.dumps(values)
                report.count("ropa_entries")

    async def _mail(
        self,
        session: AsyncSession,
        person: Person,
        dpias: list[str],
        rewrite: Rewrite,
        report: ErasureReport,
    ) -> None:
        for mail in await session.scalars(
            select(OutboxMessage).where(
                or_(OutboxMessage.dpia_id.in_(dpias), OutboxMessage.recipient == person.email)
            )
        ):
            to_them = mail.recipient == person.email
            changed = _rewrite_columns(mail, ("recipient", "subject", "last_error"), rewrite)
            if to_them and mail.status == "pending":
                # Not yet sent to someone now erased: it never will be.
                mail.status, mail.last_error = "failed", "The recipient was erased"
            message = redact_message(mail.message, rewrite)
            if changed or message != mail.message:
                mail.message = message
                report.count("outbox")
        inbound = (
            await session.scalars(
                select(InboundMessage).where(
                    or_(
                        InboundMessage.dpia_id.in_(dpias),
                        InboundMessage.envelope_from == person.email,
                        InboundMessage.from_address == person.email,
                    )
                )
            )
        ).all()
        columns = ("envelope_from", "from_address", "subject", "text", "signature", "set_aside")
        for received in inbound:
            changed = _rewrite_columns(received, (*columns, "reason"), rewrite)
            raw = redact_message(received.raw, rewrite)
            if changed or raw != received.raw:
                received.raw, received.raw_sha256 = raw, hashlib.sha256(raw).hexdigest()
                report.count("inbound_messages")
        ids = [m.id for m in inbound]
        for attachment in await session.scalars(
            select(InboundAttachment).where(InboundAttachment.inbound_id.in_(ids))
        ):
            report.count(
                "inbound_attachments", _rewrite_columns(attachment, ("filename",), rewrite)
            )
        for health in await session.scalars(select(MailHealth)):
            report.count("mail_health", _rewrite_columns(health, ("last_reason",), rewrite))
        for caught in await session.scalars(select(DevMail)):
            changed = _rewrite_columns(caught, ("mail_from", "rcpt_to"), rewrite)
            message = redact_message(caught.message, rewrite)
            if changed or message != caught.message:
                caught.message = message
                report.count("dev_mail")


async def _traced(session: AsyncSession, email: str, user_id: int | None) -> set[str]:
    """DPIAs the person left traces in without taking part now (a removed participant's row
    is gone): mail to or from their address, and for a member, their versions, audit
    events and sign-offs."""
    queries: list[Any] = [
        select(OutboxMessage.dpia_id).where(OutboxMessage.recipient == email),
        select(InboundMessage.dpia_id).where(
            or_(InboundMessage.envelope_from == email, InboundMessage.from_address == email)
        ),
    ]
    if user_id is not None:
        actor = f"user:{user_id}"
        queries += [
            select(DocumentUpdate.document_id).where(DocumentUpdate.actor == actor).distinct(),
            select(AuditEvent.dpia_id).where(AuditEvent.actor == actor).distinct(),
            select(SignOffRow.dpia_id).where(SignOffRow.signer_user_id == user_id),
        ]
    found: set[str] = set()
    for query in queries:
        found |= {dpia_id for dpia_id in await session.scalars(query) if dpia_id}
    return found


def _rewrite_json_values(text: str, rewrite: Rewrite) -> dict[str, Any] | None:
    """A JSON object of text columns with each value rewritten, or None if none changed
    (values are rewritten decoded: JSON escapes a name's accented letters)."""
    values: dict[str, Any] = json.loads(text)
    rewritten = {k: rewrite(v) if isinstance(v, str) else v for k, v in values.items()}
    return rewritten if rewritten != values else None


def _rewrite_columns(row: object, names: tuple[str, ...], rewrite: Rewrite) -> int:
    """Rewrite the text columns ``names`` of ``row``; 1 if any changed."""
    changed = 0
    for name in names:
        value = getattr(row, name)
        if isinstance(value, str):
            new = rewrite(value)
            if new != value:
                setattr(row, name, new)
                changed = 1
    return changed


async def eraser_facts(
    sessions: async_sessionmaker[AsyncSession], user_id: int | None, *, deployment_admin: bool
) -> Eraser:
    """What the erasure rule needs to know of the person asking (None: the command line,
    which speaks for the deployment's administrator)."""
    if user_id is None:
        return Eraser(True, frozenset(), frozenset())
    async with sessions() as session:
        administers = await session.scalars(
            select(Membership.organisation_id).where(
                Membership.user_id == user_id, Membership.role == "admin"
            )
        )
        owns = await session.scalars(
            select(Participant.dpia_id).where(
                Participant.user_id == user_id, Participant.role == "owner"
            )
        )
        deployment = await session.scalar(select(User.deployment_admin).where(User.id == user_id))
        return Eraser(deployment_admin or bool(deployment), frozenset(administers), frozenset(owns))
