"""Notification email: composing it, and the personal addresses and links it carries.

Every message is rendered from Jinja templates (plain text and HTML) inside the caller's
transaction and put in the outbox with its Message-ID, List-Unsubscribe (RFC 8058
one-click) and List-Id. People without an account also get a personal reply address
(``server.domain.replies``) and a personal, expiring read-only link to the DPIA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import InvalidToken
from server.domain.replies import ReplyKeys
from server.mail.compose import Outgoing, compose, new_message_id
from server.services.outbox import enqueue
from server.storage.models import Dpia, Participant, ReplyToken

# The first cut the email bridge makes in a reply: everything from this line down is ours.
REPLY_MARKER = "-- Reply above this line to comment --"


@dataclass(frozen=True, slots=True)
class ReplyScope:
    """What a reply address may post to."""

    participant_id: int
    dpia_id: str
    section: str


@dataclass(frozen=True, slots=True)
class Addressee:
    participant_id: int
    email: str
    name: str
    has_account: bool


class NotificationMail:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        base_url: str,
        mail_from: str,
        secret_key: str,
        reply_keys: ReplyKeys | None = None,
        link_days: int = 30,
    ) -> None:
        self._sessions = sessions
        self.base = base_url.rstrip("/")
        self._mail_from = mail_from
        self.domain = urlsplit(self.base).hostname or "opendpia.localhost"
        self.reply_keys = reply_keys or ReplyKeys(secret_key, ["k1"], f"reply.{self.domain}")
        self._lifetime = timedelta(days=link_days)
        self._unsubscribe = URLSafeSerializer(secret_key, salt="opendpia.unsubscribe.v1")
        self._read_links = URLSafeTimedSerializer(secret_key, salt="opendpia.read-link.v1")
        self._templates = Environment(
            loader=PackageLoader("server.mail", "templates"),
            autoescape=select_autoescape(["html"]),
        )

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    def link(self, dpia_id: str, to: Addressee) -> str:
        """Where ``to`` reads the DPIA: the app, or their read-only link."""
        if to.has_account:
            return f"{self.base}/dpias/{dpia_id}"
        return self.read_link(to.participant_id)

    def queue(
        self,
        session: AsyncSession,
        dpia: Dpia,
        to: Addressee,
        *,
        template: str,
        subject: str,
        context: dict[str, Any],
        section: str | None = None,
        field: str | None = None,
        kind: str = "n",
        comment_id: str | None = None,
    ) -> None:
        """Render ``template`` (``.txt`` and ``.html``) for ``to`` and put it in the outbox."""
        unsubscribe = f"{self.base}/unsubscribe/{self.unsubscribe_token(to.participant_id)}"
        context = {
            **context,
            "dpia_title": dpia.title,
            "dpia_id": dpia.id,
            "unsubscribe": unsubscribe,
            "email_only": not to.has_account,
        }
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{dpia.id} <{dpia.id.lower()}.{self.domain}>",
        }
        if not to.has_account:
            # No account: read in the browser by a personal link, reply to a personal address.
            context["link"] = self.read_link(to.participant_id) + (f"#{section}" if section else "")
            if section is not None:
                headers["Reply-To"] = self.issue_reply(
                    session, to.participant_id, dpia.id, section, field, comment_id
                )
                context["reply_marker"] = REPLY_MARKER
        message_id = new_message_id(self.domain, kind)
        mail = Outgoing(
            sender=self._mail_from,
            recipient=to.email,
            recipient_name=to.name,
            subject=subject,
            text=self._templates.get_template(f"{template}.txt").render(context),
            html=self._templates.get_template(f"{template}.html").render(context),
            message_id=message_id,
            headers=headers,
        )
        enqueue(
            session,
            # VERP: a bounce names the participant whose address failed (email_bridge).
            sender=self.reply_keys.bounce_address(to.participant_id),
            recipient=to.email,
            message=compose(mail, installation=self.domain),
            message_id=message_id,
            dpia_id=dpia.id,
            subject=subject,
        )

    # -- unsubscribe ------------------------------------------------------------------

    def unsubscribe_token(self, participant_id: int) -> str:
        token: str = self._unsubscribe.dumps({"p": participant_id})
        return token

    def unsubscriber(self, token: str) -> int:
        """The participant an unsubscribe token names, or InvalidToken."""
        try:
            return int(self._unsubscribe.loads(token[:500])["p"])
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidToken("This unsubscribe link is not valid") from None

    # -- reply addresses ----------------------------------------------------------------

    def issue_reply(
        self,
        session: AsyncSession,
        participant_id: int,
        dpia_id: str,
        section: str,
        field: str | None = None,
        comment_id: str | None = None,
    ) -> str:
        """A new personal reply address, stored within the caller's transaction; with
        ``comment_id``, a reply to it is a reply to that comment."""
        reply = self.reply_keys.new()
        now = datetime.now(UTC)
        session.add(
            ReplyToken(
                token=reply.token,
                participant_id=participant_id,
                dpia_id=dpia_id,
                section=section,
                field=field,
                comment_id=comment_id,
                issued_at=now,
                expires_at=now + self._lifetime,
                revoked=False,
            )
        )
        return reply.address

    async def reply_scope(self, address: str, now: datetime | None = None) -> ReplyScope:
        """Where a reply to ``address`` belongs, or InvalidToken saying why not."""
        token = self.reply_keys.token_of(address)
        async with self._sessions() as session:
            row = await session.get(ReplyToken, token)
            if row is None:
                raise InvalidToken("This reply address is unknown")
            if row.revoked:
                raise InvalidToken("This reply address was withdrawn")
            if _utc(row.expires_at) <= (now or datetime.now(UTC)):
                raise InvalidToken("This reply address has expired")
            if await session.get(Participant, row.participant_id) is None:
                raise InvalidToken("This person no longer takes part in the DPIA")
        return ReplyScope(row.participant_id, row.dpia_id, row.section)

    # -- read-only links ------------------------------------------------------------------

    def read_link(self, participant_id: int) -> str:
        return f"{self.base}/r/{self._read_links.dumps({'p': participant_id})}"

    async def reader(self, token: str) -> tuple[Participant, Dpia, int]:
        """Who a read-only link is for, and how many seconds it still works."""
        try:
            claims, signed_at = self._read_links.loads(
                token[:500], max_age=int(self._lifetime.total_seconds()), return_timestamp=True
            )
            participant_id = int(claims["p"])
        except SignatureExpired:
            raise InvalidToken("This link has expired: a newer email has a fresh one") from None
        except (BadSignature, KeyError, TypeError, ValueError):
            raise InvalidToken("This link is not valid") from None
        async with self._sessions() as session:
            participant = await session.get(Participant, participant_id)
            if participant is None:
                raise InvalidToken("This person no longer takes part in the DPIA")
            dpia = await session.get_one(Dpia, participant.dpia_id)
        remaining = signed_at + self._lifetime - datetime.now(UTC)
        return participant, dpia, max(60, int(remaining.total_seconds()))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
