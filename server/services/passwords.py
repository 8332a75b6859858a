"""Setting a new password through a link sent by email.

A request is recorded (for the rate limits) and answered the same way whether or not the
address has an account; only afterwards, out of the answer's way, ``send`` looks the
address up and, for an active account, queues the email in the outbox with a link. The
link's token is random and only its SHA-256 is stored; it works once, for ``lifetime``.
Using it sets the password, makes every other link of that person unusable, ends all
their sessions and clears their failed sign-ins.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import InvalidInput, InvalidToken, TooManyAttempts
from server.domain.people import check_password, normalise_email
from server.mail.compose import Outgoing, compose, new_message_id
from server.services.outbox import enqueue
from server.storage.models import (
    LoginFailure,
    PasswordReset,
    PasswordResetRequest,
    User,
    UserSession,
)

LINK_LIFETIME = timedelta(hours=1)
# A person invited by an administrator may not read their mail within the hour.
INVITATION_LIFETIME = timedelta(days=7)
REQUEST_WINDOW = timedelta(hours=1)
MAX_REQUESTS_PER_EMAIL = 3  # from any client: nobody can flood a person's inbox
MAX_REQUESTS_PER_ADDRESS = 10  # from one client address, for any emails
RESET_PATH = "/reset-password"


class PasswordResets:
    """Requests for, and use of, links that set a new password."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        base_url: str,
        mail_from: str,
        on_queued: Callable[[], None] = lambda: None,
        hasher: PasswordHasher | None = None,
        lifetime: timedelta = LINK_LIFETIME,
    ) -> None:
        self._sessions = sessions
        self._base = base_url.rstrip("/")
        self._mail_from = mail_from
        self._domain = urlsplit(self._base).hostname or "opendpia.localhost"
        self._on_queued = on_queued
        self._hasher = hasher or PasswordHasher()
        self.lifetime = lifetime
        self._templates = Environment(
            loader=PackageLoader("server.mail", "templates"),
            autoescape=select_autoescape(["html"]),
        )

    async def request(self, email: str, address: str) -> str:
        """Record a request (rate-limited); the normalised email, for ``send``.

        Does the same work whether or not the email has an account.
        """
        try:
            email = normalise_email(email)
        except InvalidInput:
            raise InvalidInput(
                "Enter the email address you sign in with, like name@council.gov.uk"
            ) from None
        address = address[:64]
        since = _now() - REQUEST_WINDOW
        async with self._sessions.begin() as session:
            recent = select(func.count()).where(PasswordResetRequest.at > since)
            by_email = await session.scalar(recent.where(PasswordResetRequest.email == email))
            by_address = await session.scalar(recent.where(PasswordResetRequest.address == address))
            if (by_email or 0) >= MAX_REQUESTS_PER_EMAIL or (
                by_address or 0
            ) >= MAX_REQUESTS_PER_ADDRESS:
                raise TooManyAttempts(
                    "Too many requests for a new password for this email or from your "
                    "network; wait an hour and try again. A link already sent still works.",
                    retry_after=int(REQUEST_WINDOW.total_seconds()),
                )
            session.add(PasswordResetRequest(email=email, address=address, at=_now()))
        return email

    async def send(self, email: str) -> bool:
        """Queue a link for the active account with ``email``, if there is one."""
        async with self._sessions.begin() as session:
            user = await session.scalar(
                select(User).where(User.email == email, User.active.is_(True))
            )
            if user is None:
                return False
            self.issue(session, user)
        self._on_queued()
        return True

    def issue(
        self, session: AsyncSession, user: User, *, invited_by: str = "", organisation: str = ""
    ) -> None:
        """Add a link for ``user`` (flushed, with an id) and queue its email, in the
        caller's transaction. With an ``organisation``, the email is an invitation to set a
        first password, and the link lasts ``INVITATION_LIFETIME``; call ``queued`` once
        the transaction is committed."""
        token = secrets.token_urlsafe(32)
        lifetime = INVITATION_LIFETIME if organisation else self.lifetime
        now = _now()
        session.add(
            PasswordReset(
                token_hash=_digest(token),
                user_id=user.id,
                created_at=now,
                expires_at=now + lifetime,
                used_at=None,
            )
        )
        context = {
            "name": user.name,
            "link": f"{self._base}{RESET_PATH}/{token}",
            "within": _duration(lifetime),
            "base": self._base,
            "invited_by": invited_by,
            "organisation": organisation,
        }
        subject = (
            f"You are invited to OpenDPIA by {organisation}"[:200]
            if organisation
            else "Set a new password for OpenDPIA"
        )
        message_id = new_message_id(self._domain, "password")
        mail = Outgoing(
            sender=self._mail_from,
            recipient=user.email,
            recipient_name=user.name,
            subject=subject,
            text=self._templates.get_template("password_reset.txt").render(context),
            html=self._templates.get_template("password_reset.html").render(context),
            message_id=message_id,
        )
        enqueue(
            session,
            sender=parseaddr(self._mail_from)[1],
            recipient=user.email,
            message=compose(mail, installation=self._domain),
            message_id=message_id,
            subject=mail.subject,
        )

    def queued(self) -> None:
        """Wake the mail worker for links issued in a transaction now committed."""
        self._on_queued()

    async def holder(self, token: str) -> str:
        """The email of the account a usable link is for; InvalidToken saying why not."""
        async with self._sessions() as session:
            row = await session.get(PasswordReset, _digest(token[:200]))
            if row is None:
                raise InvalidToken(
                    "This link to set a new password is not valid; ask for a new one"
                )
            _check_usable(row)
            email = await session.scalar(select(User.email).where(User.id == row.user_id))
        return email or ""

    async def reset(self, token: str, password: str, confirmation: str) -> str:
        """Set the password the link is for, once; every session of that person ends.

        Answers the account's email.
        """
        check_password(password)
        if password != confirmation:
            raise InvalidInput("The two passwords differ; type the same new password twice")
        await self.holder(token)  # the reason, before the slow hash
        password_hash = self._hasher.hash(password)
        digest = _digest(token[:200])
        now = _now()
        async with self._sessions.begin() as session:
            # Conditional, so that of two uses at once only one succeeds.
            claimed = await session.execute(
                update(PasswordReset)
                .where(
                    PasswordReset.token_hash == digest,
                    PasswordReset.used_at.is_(None),
                    PasswordReset.expires_at > now,
                )
                .values(used_at=now)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise InvalidToken("This link to set a new password was already used")
            row = await session.get_one(PasswordReset, digest)
            user = await session.get_one(User, row.user_id)
            user.password_hash = password_hash
            await session.execute(
                update(PasswordReset)
                .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                .values(used_at=now)
            )
            await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
            await session.execute(delete(LoginFailure).where(LoginFailure.email == user.email))
        return user.email


def _check_usable(row: PasswordReset) -> None:
    if row.used_at is not None:
        raise InvalidToken(
            "This link to set a new password was already used; ask for a new one if you "
            "need to set it again"
        )
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= _now():
        raise InvalidToken("This link to set a new password has expired; ask for a new one")


def _duration(lifetime: timedelta) -> str:
    minutes = int(lifetime.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{minutes} minutes"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)
