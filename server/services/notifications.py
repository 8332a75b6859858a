"""Who hears about what, in the app and by email.

Change events, notifications and their emails are written in one transaction: a change is
recorded with everything it causes, or not at all. Interested by default: every participant
of the DPIA except the person who made the change; a participant may unwatch a section
(their choice outranks the default), and an @mention always reaches the person named.
Email is immediate unless the participant turned it off (one-click unsubscribe, no login).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.changes import ChangeEvent
from server.domain.errors import DocumentNotFound, InvalidInput, InvalidToken
from server.domain.mailprefs import MailMode, effective, mail_mode
from server.domain.replies import ReplyKeys
from server.domain.templates import load_template
from server.mail.compose import Outgoing, compose, new_message_id
from server.services.accounts import CurrentUser
from server.services.outbox import enqueue
from server.storage.events import row_values
from server.storage.models import (
    ChangeEventRow,
    Dpia,
    MailPreference,
    Notification,
    Participant,
    ReplyToken,
    SectionReviewer,
    SectionWatch,
    User,
    UserMailPreference,
)

log = logging.getLogger("opendpia.notifications")
_MENTION = re.compile(r"@([\w.+-]+@[\w-]+(?:\.[\w-]+)+|[\w][\w.'-]*(?: [\w][\w.'-]*)?)")


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


@dataclass(frozen=True, slots=True)
class ReplyScope:
    """What a reply address may post to."""

    participant_id: int
    dpia_id: str
    section: str


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
    ) -> None:
        self._sessions = sessions
        self._base = base_url.rstrip("/")
        self._mail_from = mail_from
        self._domain = urlsplit(self._base).hostname or "opendpia.localhost"
        self._unsubscribe = URLSafeSerializer(secret_key, salt="opendpia.unsubscribe.v1")
        self._mail = Environment(
            loader=PackageLoader("server.mail", "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self._on_queued = on_queued
        self._listeners: dict[int, set[asyncio.Queue[None]]] = {}
        self._reply_keys = reply_keys or ReplyKeys(secret_key, ["k1"], f"reply.{self._domain}")
        self._link_lifetime = timedelta(days=link_days)
        self._read_links = URLSafeTimedSerializer(secret_key, salt="opendpia.read-link.v1")

    # -- events ----------------------------------------------------------------------

    async def record_changes(self, events: Sequence[ChangeEvent]) -> None:
        """Store change events and everything they cause, in one transaction."""
        queued = False
        told: set[int] = set()
        async with self._sessions.begin() as session:
            for event in events:
                session.add(ChangeEventRow(**row_values(event)))
                dpia = await session.get(Dpia, event.document_id)
                if dpia is None:
                    continue  # a document with no DPIA record (tooling): nobody to tell
                actor_name = await self._name_of(session, event.actor)
                recipients = await self._recipients(session, dpia.id, event.section, event.actor)
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
        self._tell(told)
        if queued:
            self._on_queued()

    async def record_comment(
        self, dpia_id: str, *, section: str, text: str, author: str, actor: str, channel: str
    ) -> None:
        queued = False
        async with self._sessions.begin() as session:
            dpia = await session.get(Dpia, dpia_id)
            if dpia is None:
                return
            recipients = await self._recipients(session, dpia_id, section, actor)
            mentioned = await self._mentioned(session, dpia_id, text, actor)
            known = {r.participant_id for r in recipients}
            recipients += [r for r in mentioned if r.participant_id not in known]
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
                what="commented",
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
                select(Participant, MailPreference.mode, UserMailPreference.mode)
                .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
                .outerjoin(UserMailPreference, UserMailPreference.user_id == Participant.user_id)
                .where(Participant.dpia_id == dpia_id, Participant.id.in_(signers))
            )
            recipients = [
                Recipient(p.id, p.email, p.name, effective(own, mine), p.user_id)
                for p, own, mine in rows
            ]
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
                excerpt=" ".join(f"{old} → {new}. {reason}".split())[:200],
                what=f"moved the DPIA from {old.replace('_', ' ')} to {new.replace('_', ' ')}",
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
                excerpt=f"You take part as {participant.role}.",
                what=f"invited you to take part (as {participant.role})",
            )
        self._tell(told)
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
    ) -> tuple[bool, set[int]]:
        """Add the notifications (and immediate emails); (any email queued, users to tell)."""
        now = datetime.now(UTC)
        queued = False
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
                self._email(session, dpia, recipient, section, field, actor_name, excerpt, what)
                queued = True
        return queued, {r.user_id for r in recipients if r.user_id is not None}

    def _email(
        self,
        session: AsyncSession,
        dpia: Dpia,
        recipient: Recipient,
        section: str,
        field: str | None,
        actor_name: str,
        excerpt: str,
        what: str,
    ) -> None:
        unsubscribe = f"{self._base}/unsubscribe/{self.unsubscribe_token(recipient.participant_id)}"
        context: dict[str, Any] = {
            "actor": actor_name,
            "what": what,
            "dpia_title": dpia.title,
            "dpia_id": dpia.id,
            "section_title": self._section_title(dpia, section),
            "field_label": self._label(dpia, field) if field and "." in field else "",
            "excerpt": excerpt,
            "link": f"{self._base}/dpias/{dpia.id}#{section}",
            "unsubscribe": unsubscribe,
            "email_only": not recipient.has_account,
        }
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{dpia.id} <{dpia.id.lower()}.{self._domain}>",
        }
        if not recipient.has_account:
            # No account: reply by email to a personal address, read in the browser by link.
            headers["Reply-To"] = self.issue_reply(
                session, recipient.participant_id, dpia.id, section
            )
            context["link"] = f"{self.read_link(recipient.participant_id)}#{section}"
        message_id = new_message_id(self._domain)
        mail = Outgoing(
            sender=self._mail_from,
            recipient=recipient.email,
            recipient_name=recipient.name,
            subject=f"{dpia.id}: {actor_name} {what}",
            text=self._mail.get_template("change.txt").render(context),
            html=self._mail.get_template("change.html").render(context),
            message_id=message_id,
            headers=headers,
        )
        enqueue(
            session,
            sender=_address(self._mail_from),
            recipient=recipient.email,
            message=compose(mail, installation=self._domain),
            message_id=message_id,
            dpia_id=dpia.id,
            subject=mail.subject,
        )

    # -- who ---------------------------------------------------------------------------

    async def _recipients(
        self, session: AsyncSession, dpia_id: str, section: str, actor: str
    ) -> list[Recipient]:
        rows = await session.execute(
            select(
                Participant,
                SectionWatch.watching,
                MailPreference.mode,
                UserMailPreference.mode,
                SectionReviewer.section,
            )
            .outerjoin(
                SectionWatch,
                (SectionWatch.participant_id == Participant.id) & (SectionWatch.section == section),
            )
            .outerjoin(
                SectionReviewer,
                (SectionReviewer.participant_id == Participant.id)
                & (SectionReviewer.section == section),
            )
            .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
            .outerjoin(UserMailPreference, UserMailPreference.user_id == Participant.user_id)
            .where(Participant.dpia_id == dpia_id)
            .order_by(Participant.id)
        )
        return [
            Recipient(p.id, p.email, p.name, effective(own, mine), p.user_id)
            for p, watching, own, mine, reviews in rows
            if (watching is not False or reviews is not None) and not _is_actor(p, actor)
        ]

    async def _mentioned(
        self, session: AsyncSession, dpia_id: str, text: str, actor: str
    ) -> list[Recipient]:
        handles = {m.lower() for m in _MENTION.findall(text)}
        if not handles:
            return []
        rows = await session.execute(
            select(Participant, MailPreference.mode, UserMailPreference.mode)
            .outerjoin(MailPreference, MailPreference.participant_id == Participant.id)
            .outerjoin(UserMailPreference, UserMailPreference.user_id == Participant.user_id)
            .where(Participant.dpia_id == dpia_id)
        )
        return [
            Recipient(p.id, p.email, p.name, effective(own, mine), p.user_id)
            for p, own, mine in rows
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

    def _section_title(self, dpia: Dpia, section: str) -> str:
        for candidate in load_template(dpia.template_id).sections:
            if candidate["id"] == section:
                return str(candidate["title"])
        return section

    def _label(self, dpia: Dpia, field: str | None) -> str:
        if not field:
            return ""
        section, _, name = field.partition(".")
        for candidate in load_template(dpia.template_id).sections:
            if candidate["id"] == section:
                for item in candidate["fields"]:
                    if item["id"] == name:
                        return f"“{item['label']}”"
        return field

    # -- email-only participants --------------------------------------------------------

    def issue_reply(
        self, session: AsyncSession, participant_id: int, dpia_id: str, section: str
    ) -> str:
        """A new personal reply address, stored within the caller's transaction."""
        reply = self._reply_keys.new()
        now = datetime.now(UTC)
        session.add(
            ReplyToken(
                token=reply.token,
                participant_id=participant_id,
                dpia_id=dpia_id,
                section=section,
                issued_at=now,
                expires_at=now + self._link_lifetime,
                revoked=False,
            )
        )
        return reply.address

    async def reply_scope(self, address: str, now: datetime | None = None) -> ReplyScope:
        """Where a reply to ``address`` belongs, or InvalidToken saying why not."""
        token = self._reply_keys.token_of(address)
        async with self._sessions() as session:
            row = await session.get(ReplyToken, token)
            if row is None:
                raise InvalidToken("this reply address is unknown")
            if row.revoked:
                raise InvalidToken("this reply address was withdrawn")
            if _utc(row.expires_at) <= (now or datetime.now(UTC)):
                raise InvalidToken("this reply address has expired")
            if await session.get(Participant, row.participant_id) is None:
                raise InvalidToken("this person no longer takes part in the DPIA")
        return ReplyScope(row.participant_id, row.dpia_id, row.section)

    def read_link(self, participant_id: int) -> str:
        return f"{self._base}/r/{self._read_links.dumps({'p': participant_id})}"

    async def reader(self, token: str) -> tuple[Participant, Dpia, int]:
        """Who a read-only link is for, and how many seconds it still works."""
        try:
            claims, signed_at = self._read_links.loads(
                token[:500], max_age=int(self._link_lifetime.total_seconds()), return_timestamp=True
            )
            participant_id = int(claims["p"])
        except SignatureExpired:
            raise InvalidToken("this link has expired: a newer email has a fresh one") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidToken("this link is not valid") from None
        async with self._sessions() as session:
            participant = await session.get(Participant, participant_id)
            if participant is None:
                raise InvalidToken("this person no longer takes part in the DPIA")
            dpia = await session.get_one(Dpia, participant.dpia_id)
        remaining = signed_at + self._link_lifetime - datetime.now(UTC)
        return participant, dpia, max(60, int(remaining.total_seconds()))

    # -- the person's side -------------------------------------------------------------

    def unsubscribe_token(self, participant_id: int) -> str:
        token: str = self._unsubscribe.dumps({"p": participant_id})
        return token

    async def unsubscribe(self, token: str) -> str:
        """Turn email off for the token's participant; the DPIA's title, for the page."""
        try:
            participant_id = int(self._unsubscribe.loads(token[:500])["p"])
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidToken("this unsubscribe link is not valid") from None
        async with self._sessions.begin() as session:
            participant = await session.get(Participant, participant_id)
            if participant is None:
                raise InvalidToken("this unsubscribe link no longer applies")
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
                    raise InvalidInput("choose how often you want email")
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
                raise DocumentNotFound("there is no such DPIA, or it is not shared with you")
            await self._set_mode(session, participant_id, chosen)

    # -- digests -----------------------------------------------------------------------

    async def send_digests(self, now: datetime | None = None) -> int:
        """One email per participant whose digest period has passed; how many were queued.

        A digest waits for its period from the oldest notification it holds (or from the
        last digest), so nothing waits longer than a period and no one gets more than one
        digest a period.
        """
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
                if mode.period is None or now - since < mode.period:
                    if mode in (MailMode.OFF, MailMode.IMMEDIATE):
                        await self._settle(session, participant_id, mode)
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

    async def _settle(self, session: AsyncSession, participant_id: int, mode: MailMode) -> None:
        """The person left digests since: what waited is shown in the app, not mailed."""
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
        unsubscribe = f"{self._base}/unsubscribe/{self.unsubscribe_token(participant_id)}"
        context: dict[str, Any] = {
            "period": "hour" if mode is MailMode.HOURLY else "day",
            "dpia_title": dpia.title,
            "dpia_id": dpia.id,
            "items": [
                {
                    "actor": n.actor_name,
                    "what": "commented on" if n.kind == "comment" else "changed",
                    "section": self._section_title(dpia, n.section),
                    "excerpt": n.excerpt,
                    "link": f"{self._base}/dpias/{dpia.id}#{n.section}",
                }
                for n in items
            ],
            "link": f"{self._base}/dpias/{dpia.id}",
            "unsubscribe": unsubscribe,
        }
        message_id = new_message_id(self._domain, "digest")
        plural = "s" if len(items) != 1 else ""
        mail = Outgoing(
            sender=self._mail_from,
            recipient=participant.email,
            recipient_name=participant.name,
            subject=f"{dpia.id}: {len(items)} update{plural} this {context['period']}",
            text=self._mail.get_template("digest.txt").render(context),
            html=self._mail.get_template("digest.html").render(context),
            message_id=message_id,
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": f"{dpia.id} <{dpia.id.lower()}.{self._domain}>",
            },
        )
        enqueue(
            session,
            sender=_address(self._mail_from),
            recipient=participant.email,
            message=compose(mail, installation=self._domain),
            message_id=message_id,
            dpia_id=dpia.id,
            subject=mail.subject,
        )
        await session.execute(
            update(Notification)
            .where(Notification.id.in_([n.id for n in items]))
            .values(email="queued")
        )

    async def run_digests(self, started: asyncio.Event, every_seconds: float = 60.0) -> None:
        started.set()
        while True:
            try:
                await self.send_digests()
            except Exception:
                log.exception("sending digests failed; trying again later")
            await asyncio.sleep(every_seconds)

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


_EMAIL_STATE = {
    MailMode.IMMEDIATE: "queued",
    MailMode.HOURLY: "digest",
    MailMode.DAILY: "digest",
    MailMode.OFF: "none",
}


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_actor(participant: Participant, actor: str) -> bool:
    kind, _, number = actor.partition(":")
    if not number.isdigit():
        return False
    if kind == "user":
        return participant.user_id == int(number)
    return kind == "participant" and participant.id == int(number)


def _address(sender: str) -> str:
    """The bare address of a From such as ``OpenDPIA <n@x>``, for the envelope."""
    match = re.search(r"<([^>]+)>", sender)
    return match.group(1) if match else sender
