"""A person's side of notifications: the feed, what they watch, how they want email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import DocumentNotFound, InvalidInput, InvalidToken
from server.domain.mailprefs import MailMode, effective, mail_mode
from server.services.accounts import CurrentUser
from server.services.notification_mail import NotificationMail
from server.storage.models import (
    Dpia,
    MailPreference,
    Notification,
    Participant,
    SectionWatch,
    UserMailPreference,
)


@dataclass(frozen=True, slots=True)
class FeedItem:
    id: int
    dpia_id: str
    dpia_title: str
    kind: str
    section: str
    actor_name: str
    channel: str
    excerpt: str
    created_at: datetime
    read: bool


class Inbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], mail: NotificationMail) -> None:
        self._sessions = sessions
        self._mail = mail

    async def unsubscribe(self, token: str) -> str:
        """Turn email off for the token's participant; the DPIA's title, for the page."""
        participant_id = self._mail.unsubscriber(token)
        async with self._sessions.begin() as session:
            participant = await session.get(Participant, participant_id)
            if participant is None:
                raise InvalidToken("This unsubscribe link no longer applies")
            await self._set_mode(session, participant_id, MailMode.OFF)
            title = await session.scalar(select(Dpia.title).where(Dpia.id == participant.dpia_id))
        return title or ""

    async def _set_mode(
        self, session: AsyncSession, participant_id: int, mode: MailMode | None
    ) -> None:
        preference = await session.get(MailPreference, participant_id)
        value = mode.value if mode is not None else None
        if preference is None:
            session.add(MailPreference(participant_id=participant_id, mode=value))
        else:
            preference.mode = value

    async def preferences(
        self, user: CurrentUser
    ) -> tuple[MailMode, list[tuple[str, str, MailMode | None]]]:
        """The user's global choice, and each DPIA's own (None: follows the global one)."""
        async with self._sessions() as session:
            mine = await session.get(UserMailPreference, user.id)
            rows = await session.execute(
                select(Participant.dpia_id, Dpia.title, MailPreference.mode)
                .join(Dpia, Dpia.id == Participant.dpia_id)
                .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
                .where(Participant.user_id == user.id)
                .order_by(Dpia.title)
            )
            own = [(d, t, MailMode(m) if m else None) for d, t, m in rows]
        return effective(None, mine.mode if mine else None), own

    async def set_preference(self, user: CurrentUser, dpia_id: str | None, mode: str) -> None:
        """Set the global choice (``dpia_id`` None) or one DPIA's ("" follows the global)."""
        chosen = mail_mode(mode) if mode else None
        async with self._sessions.begin() as session:
            if dpia_id is None:
                if chosen is None:
                    raise InvalidInput("Choose how often you want email")
                row = await session.get(UserMailPreference, user.id)
                if row is None:
                    session.add(UserMailPreference(user_id=user.id, mode=chosen.value))
                else:
                    row.mode = chosen.value
                return
            participant_id = await session.scalar(
                select(Participant.id).where(
                    Participant.dpia_id == dpia_id, Participant.user_id == user.id
                )
            )
            if participant_id is None:
                raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
            await self._set_mode(session, participant_id, chosen)

    async def set_watch(self, participant_id: int, section: str, watching: bool) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(SectionWatch, (participant_id, section))
            if row is None:
                session.add(
                    SectionWatch(participant_id=participant_id, section=section, watching=watching)
                )
            else:
                row.watching = watching

    async def watching(self, user: CurrentUser) -> list[tuple[str, str, int, set[str]]]:
        """Per DPIA of the user: (id, title, participant id, sections they unwatched)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Participant.dpia_id, Dpia.title, Participant.id, SectionWatch.section)
                .join(Dpia, Dpia.id == Participant.dpia_id)
                .outerjoin(
                    SectionWatch,
                    (SectionWatch.participant_id == Participant.id)
                    & SectionWatch.watching.is_(False),
                )
                .where(Participant.user_id == user.id)
                .order_by(Dpia.title)
            )
            result: dict[str, tuple[str, str, int, set[str]]] = {}
            for dpia_id, title, participant_id, section in rows:
                entry = result.setdefault(dpia_id, (dpia_id, title, participant_id, set()))
                if section is not None:
                    entry[3].add(section)
            return list(result.values())

    async def feed(self, user: CurrentUser, limit: int = 100) -> list[FeedItem]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Notification, Dpia.title)
                .join(Participant, Participant.id == Notification.participant_id)
                .join(Dpia, Dpia.id == Notification.dpia_id)
                .where(Participant.user_id == user.id)
                .order_by(Notification.id.desc())
                .limit(limit)
            )
            return [
                FeedItem(
                    n.id,
                    n.dpia_id,
                    title,
                    n.kind,
                    n.section,
                    n.actor_name,
                    n.channel,
                    n.excerpt,
                    n.created_at,
                    n.read_at is not None,
                )
                for n, title in rows
            ]

    async def unread(self, user: CurrentUser) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Notification)
                .join(Participant, Participant.id == Notification.participant_id)
                .where(Participant.user_id == user.id, Notification.read_at.is_(None))
            )
        return count or 0

    async def mark_all_read(self, user: CurrentUser) -> None:
        mine = select(Participant.id).where(Participant.user_id == user.id).scalar_subquery()
        async with self._sessions.begin() as session:
            await session.execute(
                update(Notification)
                .where(Notification.participant_id.in_(mine), Notification.read_at.is_(None))
                .values(read_at=datetime.now(UTC))
            )
