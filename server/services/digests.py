"""Hourly and daily digests: one email gathering a period's notifications.

A digest gathers from its oldest notification (or the last digest) for one period, so
nothing waits longer than a period and nobody gets more than one digest a period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.mailprefs import MailMode, effective
from server.domain.tasks import stop_if_cancelled
from server.services.notification_mail import Addressee, NotificationMail
from server.storage.models import (
    Dpia,
    MailPreference,
    Notification,
    Participant,
    UserMailPreference,
)

log = logging.getLogger("opendpia.notifications")


class DigestSender:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mail: NotificationMail,
        section_title: Callable[[Dpia, str], str],
        on_queued: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._mail = mail
        self._section_title = section_title
        self._on_queued = on_queued

    async def send(self, now: datetime | None = None) -> int:
        """One email per participant whose digest period has passed; how many were queued."""
        now = now or datetime.now(UTC)
        queued = 0
        async with self._sessions.begin() as session:
            pending = (
                await session.execute(
                    select(
                        Notification.participant_id,
                        func.min(Notification.created_at),
                        MailPreference.mode,
                        MailPreference.last_digest_at,
                        UserMailPreference.mode,
                    )
                    .join(Participant, Participant.id == Notification.participant_id)
                    .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
                    .outerjoin(
                        UserMailPreference, UserMailPreference.user_id == Participant.user_id
                    )
                    .where(Notification.email == "digest")
                    .group_by(
                        Notification.participant_id,
                        MailPreference.mode,
                        MailPreference.last_digest_at,
                        UserMailPreference.mode,
                    )
                )
            ).all()
            for participant_id, oldest, own, last, mine in pending:
                mode = effective(own, mine)
                since = _utc(last) if last is not None else _utc(oldest)
                if mode.period is None:
                    await self._settle(session, participant_id)  # left digests since
                    continue
                if now - since < mode.period:
                    continue
                await self._digest(session, participant_id, mode)
                preference = await session.get(MailPreference, participant_id)
                if preference is None:
                    session.add(
                        MailPreference(participant_id=participant_id, mode=None, last_digest_at=now)
                    )
                else:
                    preference.last_digest_at = now
                queued += 1
        if queued:
            self._on_queued()
        return queued

    async def _settle(self, session: AsyncSession, participant_id: int) -> None:
        """The person left digests: what waited is shown in the app, not mailed."""
        await session.execute(
            update(Notification)
            .where(Notification.participant_id == participant_id, Notification.email == "digest")
            .values(email="none")
        )

    async def _digest(self, session: AsyncSession, participant_id: int, mode: MailMode) -> None:
        participant = await session.get_one(Participant, participant_id)
        dpia = await session.get_one(Dpia, participant.dpia_id)
        items = (
            await session.scalars(
                select(Notification)
                .where(
                    Notification.participant_id == participant_id,
                    Notification.email == "digest",
                )
                .order_by(Notification.id)
            )
        ).all()
        to = Addressee(
            participant.id, participant.email, participant.name, participant.user_id is not None
        )
        link = self._mail.link(dpia.id, to)
        period = "hour" if mode is MailMode.HOURLY else "day"
        plural = "s" if len(items) != 1 else ""
        self._mail.queue(
            session,
            dpia,
            to,
            template="digest",
            subject=f"{dpia.id}: {len(items)} update{plural} this {period}",
            context={
                "period": period,
                "link": link,
                "items": [
                    {
                        "actor": n.actor_name,
                        "what": _DIGEST_VERBS.get(n.kind, "changed"),
                        "section": self._section_title(dpia, n.section),
                        "excerpt": n.excerpt,
                        "link": f"{link}#{n.section}",
                    }
                    for n in items
                ],
            },
            kind="digest",
        )
        await session.execute(
            update(Notification)
            .where(Notification.id.in_([n.id for n in items]))
            .values(email="queued")
        )

    async def run(self, started: asyncio.Event, every_seconds: float = 60.0) -> None:
        started.set()
        while True:
            stop_if_cancelled()
            try:
                await self.send()
            except Exception:
                log.exception("sending digests failed; trying again later")
            await asyncio.sleep(every_seconds)


# How a digest line reads "{actor} {what} {section}: {excerpt}" for each kind of notice.
_DIGEST_VERBS = {
    "comment": "commented on",
    "review": "reminded you about",  # "OpenDPIA reminded you about Review: …"
    "trigger": "raised a review trigger on",
}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
