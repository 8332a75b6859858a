"""Reminders to sign (issue 16; docs/projects.md): an owner's "Remind the outstanding"
writes one email per person and document, through the outbox, at most once a day
(``signoff_reminders`` remembers when)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.parties import Capacity, RequiredSignature, parse_capacities, reminder_due
from server.services.accounts import CurrentUser
from server.services.outbox import enqueue_text
from server.services.party_status import DocumentSignOffs, ProjectSignOffs, aware
from server.storage.models import Membership, SignOffReminder, User


@dataclass(frozen=True, slots=True)
class Reminded:
    # (document, address) pairs: written to now, or reminded in the last day already
    sent: list[tuple[str, str]] = field(default_factory=list)
    not_due: list[tuple[str, str]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # parties with nobody to write to


class SignOffReminders:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        base_url: str,
        mail_from: str,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._base = base_url.rstrip("/")
        self._mail_from = mail_from
        self._domain = urlsplit(self._base).hostname or "opendpia.localhost"
        self._on_queued = on_queued

    async def remind(self, user: CurrentUser, status: ProjectSignOffs) -> Reminded:
        """Remind every outstanding signatory of the project ``status`` reports (members of
        the party's organisation holding the capacity) by email, at most once a day per
        person and document. The caller checks that ``user`` may (an owner)."""
        result = Reminded()
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            for document in status.documents:
                if document.locked:
                    continue
                for required in document.outstanding:
                    people = await _signatories(
                        session, required.party.organisation_id, required.capacity
                    )
                    if not people:
                        result.unreachable.append(required.party.name)
                    for email, name in people:
                        await self._remind_one(
                            session, user, status, document, required, email, name, now, result
                        )
        if result.sent:
            self._on_queued()
        return result

    async def _remind_one(
        self,
        session: AsyncSession,
        user: CurrentUser,
        status: ProjectSignOffs,
        document: DocumentSignOffs,
        required: RequiredSignature,
        email: str,
        name: str,
        now: datetime,
        result: Reminded,
    ) -> None:
        key = (document.document_id, email)
        if key in result.sent or key in result.not_due:
            return  # one email per person and document, whatever roles they hold
        row = await session.get(SignOffReminder, key)
        if row is not None and not reminder_due(aware(row.sent_at), now):
            result.not_due.append(key)
            return
        link = f"{self._base}/projects/{status.project_id}/sign-off"
        text = (
            f"Dear {name},\n\n{user.name} asks you to sign {document.title} "
            f"({document.document_id}) for {required.party.name} as "
            f"{required.capacity.label}.\n\nRead it and sign: {link}\n"
        )
        enqueue_text(
            session,
            mail_from=self._mail_from,
            domain=self._domain,
            kind="remind",
            recipient=email,
            recipient_name=name,
            subject=f"Please sign: {document.title}",
            text=text,
            dpia_id=document.document_id,
        )
        if row is None:
            session.add(
                SignOffReminder(
                    dpia_id=document.document_id,
                    address=email,
                    sent_at=now,
                    sent_by=f"user:{user.id}",
                )
            )
        else:
            row.sent_at, row.sent_by = now, f"user:{user.id}"
        result.sent.append(key)


async def _signatories(
    session: AsyncSession, organisation_id: int | None, capacity: Capacity
) -> list[tuple[str, str]]:
    """The active members of an organisation who hold ``capacity`` (email, name)."""
    if organisation_id is None:
        return []
    rows = await session.execute(
        select(User.email, User.name, Membership.signatory_roles)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == organisation_id, User.active.is_(True))
        .order_by(User.email)
    )
    return [(email, name) for email, name, raw in rows if capacity in parse_capacities(raw)]
