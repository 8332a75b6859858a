"""Who hears about what: recording events and actions, and telling the right people.

Change events, notifications and their emails are written in one transaction: a change is
recorded with everything it causes, or not at all. Interested by default: every participant
of the DPIA except the person who made the change; a participant may unwatch a section
(their choice outranks the default), and an @mention always reaches the person named.
How each person hears is theirs to choose: ``inbox`` (feed, watching, email settings);
email is composed by ``notification_mail`` and gathered into ``digests``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.access import Role
from server.domain.changes import ChangeEvent
from server.domain.dpias import DpiaStatus
from server.domain.mailprefs import MailMode, effective
from server.domain.replies import ReplyKeys
from server.domain.reviews import TRIGGERABLE, review_cycle_of
from server.domain.templates import UnknownTemplate, load_template
from server.services.digests import DigestSender
from server.services.inbox import Inbox
from server.services.notification_mail import Addressee, NotificationMail
from server.storage.database import writer_turn
from server.storage.events import row_values
from server.storage.models import (
    ChangeEventRow,
    Dpia,
    MailHealth,
    MailPreference,
    Notification,
    Participant,
    SectionReviewer,
    SectionWatch,
    User,
    UserMailPreference,
)

log = logging.getLogger("opendpia.notifications")
_MENTION = re.compile(r"@([\w.+-]+@[\w-]+(?:\.[\w-]+)+|[\w][\w.'-]*(?: [\w][\w.'-]*)?)")


@dataclass(frozen=True, slots=True)
class CommentNotice:
    """A comment to tell people about: its text, its author's name, who and how."""

    text: str
    author: str
    actor: str
    channel: str
    comment_id: str | None = None  # an emailed answer to the notification joins it


@dataclass(frozen=True, slots=True)
class Recipient:
    participant_id: int
    email: str
    name: str
    mode: MailMode
    user_id: int | None = None

    @property
    def has_account(self) -> bool:
        return self.user_id is not None

    @property
    def addressee(self) -> Addressee:
        return Addressee(self.participant_id, self.email, self.name, self.has_account)


class NotificationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        base_url: str,
        mail_from: str,
        secret_key: str,
        on_queued: Callable[[], None] = lambda: None,
        reply_keys: ReplyKeys | None = None,
        link_days: int = 30,
        announce: Callable[[Iterable[int]], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_queued = on_queued
        # Several processes: the bus wakes every process's listeners (``wake``).
        self._announce = announce or self.wake
        self._listeners: dict[int, set[asyncio.Queue[None]]] = {}
        self.mail = NotificationMail(
            sessions,
            base_url=base_url,
            mail_from=mail_from,
            secret_key=secret_key,
            reply_keys=reply_keys,
            link_days=link_days,
        )
        self.digests = DigestSender(sessions, self.mail, self._section_title, on_queued)
        self.inbox = Inbox(sessions, self.mail)

    def queued(self) -> None:
        """Mail was put in the outbox by someone else (the email bridge): wake the worker."""
        self._on_queued()

    # -- events ----------------------------------------------------------------------

    async def record_changes(self, events: Sequence[ChangeEvent]) -> None:
        """Store change events and everything they cause, in one transaction."""
        queued = False
        told: set[int] = set()
        # As for comments, the write turn covers the commit alone: reading recipients and
        # composing their emails inside it took up to 0.6 s under load, and the rooms' own
        # commits (the editors' "saved") waited behind it. Nothing is flushed before.
        async with self._sessions() as session:
            with session.no_autoflush:
                for event in events:
                    session.add(ChangeEventRow(**row_values(event)))
                    dpia = await session.get(Dpia, event.document_id)
                    if dpia is None:
                        continue  # a document with no DPIA record (tooling): nobody to tell
                    actor_name = await self._name_of(session, event.actor)
                    recipients = await self._recipients(
                        session, dpia.id, event.section, event.actor
                    )
                    emailed, users = self._notify(
                        session,
                        dpia,
                        recipients,
                        kind="change",
                        section=event.section,
                        field=event.field,
                        actor_name=actor_name,
                        channel=event.channel,
                        excerpt=event.excerpt,
                        what=f"changed {self._label(dpia, event.field)}",
                    )
                    queued |= emailed
                    told |= users
            async with writer_turn(self._sessions):
                await session.commit()
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_comment(
        self,
        dpia_id: str,
        *,
        section: str,
        text: str,
        author: str,
        actor: str,
        channel: str,
        comment_id: str | None = None,
    ) -> None:
        await self.record_comments(
            dpia_id,
            section,
            [CommentNotice(text, author, actor, channel, comment_id)],
        )

    async def record_comments(
        self, dpia_id: str, section: str, comments: Sequence[CommentNotice]
    ) -> None:
        """Tell the interested people about comments on one section, as one notification each.

        Several comments arriving together (a burst of email replies) make one notification
        and one email per person, not one per comment. Nobody hears about only their own.
        """
        if not comments:
            return
        # The write turn covers the commit alone: finding the recipients and composing their
        # emails (most of the work) runs before it, so another process's writers (serve's
        # editors) do not wait for it. Nothing is flushed before the commit.
        async with self._sessions() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                return
            recipients = await self._recipients(session, dpia_id, section, actor="")
            await self._add_mentioned(
                session, dpia_id, recipients, [(c.text, c.actor) for c in comments]
            )
            authors = {c.actor for c in comments}
            recipients = [
                r for r in recipients if not (len(authors) == 1 and _is_recipient(r, *authors))
            ]
            last = comments[-1]
            names = list(dict.fromkeys(c.author for c in comments))
            queued, told = self._notify(
                session,
                dpia,
                recipients,
                kind="comment",
                section=section,
                field=None,
                actor_name=_joined(names),
                channel=last.channel if len({c.channel for c in comments}) == 1 else "email",
                excerpt=" ".join(last.text.split())[:200],
                what="commented" if len(comments) == 1 else f"added {len(comments)} comments",
                # One comment: an emailed answer is a reply to it; several: a new comment.
                comment_id=comments[0].comment_id if len(comments) == 1 else None,
            )
            async with writer_turn(self._sessions):
                await session.commit()
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_reply(
        self,
        dpia_id: str,
        *,
        section: str,
        text: str,
        author: str,
        actor: str,
        channel: str,
        thread: Sequence[int],
        comment_id: str | None = None,
    ) -> None:
        """Tell the people in a comment's thread (its author and earlier repliers, by
        participant id) and anyone @mentioned about a reply; never its own author."""
        async with writer_turn(self._sessions), self._sessions.begin() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                return
            rows = await session.execute(
                _with_mail_modes(dpia_id).where(Participant.id.in_(set(thread)))
            )
            recipients = [
                _recipient(p, own, mine, paused)
                for p, own, mine, paused in rows
                if not _is_actor(p, actor)
            ]
            await self._add_mentioned(session, dpia_id, recipients, [(text, actor)])
            queued, told = self._notify(
                session,
                dpia,
                recipients,
                kind="comment",
                section=section,
                field=None,
                actor_name=author,
                channel=channel,
                excerpt=" ".join(text.split())[:200],
                what="replied to a comment",
                comment_id=comment_id,
            )
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_stale_signoff(
        self, dpia_id: str, *, section: str, signers: Sequence[int], actor: str, excerpt: str
    ) -> None:
        """The hook sign-off (issue 6) calls when a signed section changes: tell the signers,
        whatever they watch, that what they signed is no longer what is there."""
        async with self._sessions.begin() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                return
            rows = await session.execute(
                _with_mail_modes(dpia_id).where(Participant.id.in_(signers))
            )
            recipients = [_recipient(p, own, mine, paused) for p, own, mine, paused in rows]
            queued, told = self._notify(
                session,
                dpia,
                recipients,
                kind="stale",
                section=section,
                field=None,
                actor_name=await self._name_of(session, actor),
                channel="browser",
                excerpt=excerpt,
                what=f"changed {self._section_title(dpia, section)}, which you signed off",
            )
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_status_change(
        self, dpia_id: str, *, old: str, new: str, actor: str, reason: str = ""
    ) -> None:
        """The hook the DPIA workflow (issue 6) calls when a DPIA's status moves."""
        before, after = (
            wording.label(wording.DPIA_STATUSES, old),
            wording.label(wording.DPIA_STATUSES, new),
        )
        async with self._sessions.begin() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                return
            recipients = await self._recipients(session, dpia_id, "outcome", actor)
            queued, told = self._notify(
                session,
                dpia,
                recipients,
                kind="status",
                section="outcome",
                field=None,
                actor_name=await self._name_of(session, actor),
                channel="browser",
                excerpt=" ".join(f"{before} → {after}. {reason}".split())[:200],
                what=wording.moved(before, after),
            )
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_invitation(self, dpia_id: str, participant_id: int, inviter: str) -> None:
        """Tell a new participant they were invited (by email whatever their settings)."""
        async with self._sessions.begin() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            participant = await session.get_one(Participant, participant_id)
            recipient = Recipient(
                participant.id,
                participant.email,
                participant.name,
                MailMode.IMMEDIATE,
                participant.user_id,
            )
            _, told = self._notify(
                session,
                dpia,
                [recipient],
                kind="invitation",
                section="need",
                field=None,
                actor_name=inviter,
                channel="browser",
                excerpt=wording.invited(participant.role),
                what=wording.invited_you(participant.role),
            )
        self._tell(told)
        self._on_queued()

    async def notify_roles(
        self,
        session: AsyncSession,
        dpia: Dpia,
        roles: Iterable[Role],
        *,
        kind: str,
        section: str,
        actor_name: str,
        channel: str,
        excerpt: str,
        what: str,
        actor: str = "",
    ) -> tuple[bool, set[int]]:
        """Notify the DPIA's participants in ``roles`` (but ``actor``) inside the caller's
        transaction, each as their email settings say (immediate, digest, none); the
        caller passes the result to ``announce`` once committed (review cycles, issue 17)."""
        rows = await session.execute(
            _with_mail_modes(dpia.id)
            .where(Participant.role.in_([r.value for r in roles]))
            .order_by(Participant.id)
        )
        recipients = [
            _recipient(p, own, mine, paused)
            for p, own, mine, paused in rows
            if not _is_actor(p, actor)
        ]
        return self._notify(
            session,
            dpia,
            recipients,
            kind=kind,
            section=section,
            field=None,
            actor_name=actor_name,
            channel=channel,
            excerpt=excerpt,
            what=what,
        )

    def announce(self, result: tuple[bool, set[int]]) -> None:
        """After the transaction of ``notify_roles`` committed: wake the feeds and the mail."""
        queued, told = result
        self._tell(told)
        if queued:
            self._on_queued()

    def listen(self, user_id: int) -> asyncio.Queue[None]:
        """A queue that receives an item whenever the user gets a notification (this process)."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._listeners.setdefault(user_id, set()).add(queue)
        return queue

    def unlisten(self, user_id: int, queue: asyncio.Queue[None]) -> None:
        listeners = self._listeners.get(user_id)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del self._listeners[user_id]

    def _tell(self, user_ids: set[int]) -> None:
        if user_ids:
            self._announce(user_ids)

    def wake(self, user_ids: Iterable[int]) -> None:
        """Wake this process's listeners of these users (their unread count changed)."""
        for user_id in user_ids:
            for queue in self._listeners.get(user_id, ()):
                if queue.empty():
                    queue.put_nowait(None)

    def _notify(
        self,
        session: AsyncSession,
        dpia: Dpia,
        recipients: list[Recipient],
        *,
        kind: str,
        section: str,
        field: str | None,
        actor_name: str,
        channel: str,
        excerpt: str,
        what: str,
        comment_id: str | None = None,
    ) -> tuple[bool, set[int]]:
        """Add the notifications (and immediate emails); (any email queued, users to tell)."""
        now = datetime.now(UTC)
        queued = False
        review = self._review_words(dpia)
        for recipient in recipients:
            session.add(
                Notification(
                    dpia_id=dpia.id,
                    participant_id=recipient.participant_id,
                    kind=kind,
                    section=section,
                    field=field,
                    actor_name=actor_name[:200],
                    channel=channel,
                    excerpt=excerpt[:500],
                    created_at=now,
                    email=_EMAIL_STATE[recipient.mode],
                )
            )
            if recipient.mode is MailMode.IMMEDIATE:
                self.mail.queue(
                    session,
                    dpia,
                    recipient.addressee,
                    template="change",
                    subject=f"{dpia.id}: {actor_name} {what}",
                    context={
                        "actor": actor_name,
                        "what": what,
                        "section_title": self._section_title(dpia, section),
                        "field_label": self._label(dpia, field) if field and "." in field else "",
                        "excerpt": excerpt,
                        "link": f"{self.mail.base}/dpias/{dpia.id}#{section}",
                        **review,
                    },
                    section=section,
                    field=field.partition(".")[2] or None if field else None,
                    comment_id=comment_id,
                )
                queued = True
        return queued, {r.user_id for r in recipients if r.user_id is not None}

    # -- who ---------------------------------------------------------------------------

    async def _recipients(
        self, session: AsyncSession, dpia_id: str, section: str, actor: str
    ) -> list[Recipient]:
        rows = await session.execute(
            _with_mail_modes(dpia_id, SectionWatch.watching, SectionReviewer.section)
            .outerjoin(
                SectionWatch,
                (SectionWatch.participant_id == Participant.id) & (SectionWatch.section == section),
            )
            .outerjoin(
                SectionReviewer,
                (SectionReviewer.participant_id == Participant.id)
                & (SectionReviewer.section == section),
            )
            .order_by(Participant.id)
        )
        return [
            _recipient(p, own, mine, paused)
            for p, own, mine, paused, watching, reviews in rows
            if (watching is not False or reviews is not None) and not _is_actor(p, actor)
        ]

    async def _add_mentioned(
        self,
        session: AsyncSession,
        dpia_id: str,
        recipients: list[Recipient],
        texts: Sequence[tuple[str, str]],
    ) -> None:
        """Add the people each (text, its author) @mentions, once, to ``recipients``."""
        known = {r.participant_id for r in recipients}
        for text, actor in texts:
            for person in await self._mentioned(session, dpia_id, text, actor):
                if person.participant_id not in known:
                    recipients.append(person)
                    known.add(person.participant_id)

    async def _mentioned(
        self, session: AsyncSession, dpia_id: str, text: str, actor: str
    ) -> list[Recipient]:
        handles = {m.lower() for m in _MENTION.findall(text)}
        if not handles:
            return []
        rows = await session.execute(_with_mail_modes(dpia_id))
        return [
            _recipient(p, own, mine, paused)
            for p, own, mine, paused in rows
            if (p.email.lower() in handles or p.name.lower() in handles) and not _is_actor(p, actor)
        ]

    async def _name_of(self, session: AsyncSession, actor: str) -> str:
        kind, _, number = actor.partition(":")
        if number.isdigit() and kind == "user":
            name = await session.scalar(select(User.name).where(User.id == int(number)))
            return name or actor
        if number.isdigit() and kind == "participant":
            name = await session.scalar(
                select(Participant.name).where(Participant.id == int(number))
            )
            return name or actor
        return actor

    def _review_words(self, dpia: Dpia) -> dict[str, str]:
        """On an approved document that has review triggers, what an email says about
        raising one: by replying "This has changed: …" (people without an account, who get
        a reply address) or on its review page (docs/reviews.md)."""
        if DpiaStatus(dpia.status) not in TRIGGERABLE:
            return {}
        try:
            template = load_template(dpia.template_id, dpia.template_version)
        except UnknownTemplate:
            return {}
        cycle = review_cycle_of(template.content)
        if cycle is None:
            return {}
        return {
            "review_reply": wording.review_reply_hint(
                t.label for t in cycle.triggers if t.id != "other"
            ),
            "review_link_words": wording.REVIEW_TRIGGER_LINK,
            "review_link": f"{self.mail.base}/dpias/{dpia.id}/review",
        }

    def _section_title(self, dpia: Dpia, section: str) -> str:
        return wording.section_title(_sections(dpia), section)

    def _label(self, dpia: Dpia, field: str | None) -> str:
        """A field by its label in quotes; a field the template lacks by its section's title
        (never by its id: "changed need" is what people used to read)."""
        if not field:
            return ""
        section, _, name = field.partition(".")
        for candidate in _sections(dpia):
            if candidate["id"] == section:
                for item in candidate["fields"]:
                    if item["id"] == name:
                        return f"“{item['label']}”"
        return f"“{self._section_title(dpia, section)}”"


_EMAIL_STATE = {
    MailMode.IMMEDIATE: "queued",
    MailMode.HOURLY: "digest",
    MailMode.DAILY: "digest",
    MailMode.OFF: "none",
}


def _with_mail_modes(dpia_id: str, *columns: Any) -> Select[Any]:
    """A DPIA's participants with their own and their global email setting (and ``columns``)."""
    return (
        select(
            Participant,
            MailPreference.mode,
            UserMailPreference.mode,
            MailHealth.paused_at,
            *columns,
        )
        .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
        .outerjoin(MailHealth, MailHealth.participant_id == Participant.id)
        .outerjoin(UserMailPreference, UserMailPreference.user_id == Participant.user_id)
        .where(Participant.dpia_id == dpia_id)
    )


def _recipient(
    participant: Participant, own: str | None, overall: str | None, paused: datetime | None
) -> Recipient:
    # An address that bounced hard again and again gets no more mail (email_bridge), but
    # its owner still sees the feed.
    return Recipient(
        participant.id,
        participant.email,
        participant.name,
        MailMode.OFF if paused is not None else effective(own, overall),
        participant.user_id,
    )


def _is_actor(participant: Participant, actor: str) -> bool:
    kind, _, number = actor.partition(":")
    if not number.isdigit():
        return False
    if kind == "user":
        return participant.user_id == int(number)
    return kind == "participant" and participant.id == int(number)


def _is_recipient(recipient: Recipient, actor: str) -> bool:
    kind, _, number = actor.partition(":")
    if not number.isdigit():
        return False
    if kind == "user":
        return recipient.user_id == int(number)
    return kind == "participant" and recipient.participant_id == int(number)


def _joined(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more"


def _sections(dpia: Dpia) -> list[dict[str, Any]]:
    """The sections of the DPIA's template version; none if this process has not loaded it
    (an organisation's template published since it started: the words fall back to ids)."""
    try:
        return load_template(dpia.template_id, dpia.template_version).sections
    except UnknownTemplate:
        return []
