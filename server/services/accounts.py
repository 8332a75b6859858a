"""Organisations, users, sign-in and sessions.

A session cookie holds a random secret; the database keeps only its SHA-256, so a copy of
the database signs nobody in. Failed sign-ins are counted in the database (so the limits
hold across server processes) over a window, per client address and account together, and
per client address: one client guessing one account's password, or trying many accounts,
is stopped, while nobody elsewhere can lock a person out of their own account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import AccessDenied, Conflict, InvalidInput, TooManyAttempts
from server.domain.people import (
    check_name,
    check_org_code,
    check_password,
    normalise_email,
)
from server.storage.models import LoginFailure, Membership, Organisation, User, UserSession

SESSION_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CLIENT = 5  # for one account from one client address
MAX_FAILURES_PER_ADDRESS = 30  # for any accounts from one client address


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    email: str
    name: str
    organisation_ids: tuple[int, ...]


class AccountService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher | None = None
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher or PasswordHasher()
        # Verifying against this when the email is unknown keeps the timing the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def create_organisation(self, code: str, name: str) -> int:
        organisation = Organisation(
            code=check_org_code(code), name=check_name(name, "name"), created_at=_now()
        )
        try:
            async with self._sessions.begin() as session:
                session.add(organisation)
        except IntegrityError:
            raise Conflict(f"An organisation with code {organisation.code} exists") from None
        return organisation.id

    async def organisation_id(self, code: str) -> int:
        async with self._sessions() as session:
            found = await session.scalar(
                select(Organisation.id).where(Organisation.code == check_org_code(code))
            )
        if found is None:
            raise InvalidInput(f"There is no organisation with code {code.strip().upper()}")
        return found

    async def create_user(
        self, email: str, name: str, password: str, organisation_code: str, *, admin: bool = False
    ) -> int:
        organisation_id = await self.organisation_id(organisation_code)
        user = User(
            email=normalise_email(email),
            name=check_name(name),
            password_hash=self._hasher.hash(check_password(password)),
            active=True,
            created_at=_now(),
        )
        try:
            async with self._sessions.begin() as session:
                session.add(user)
                await session.flush()
                session.add(
                    Membership(
                        user_id=user.id,
                        organisation_id=organisation_id,
                        role="admin" if admin else "member",
                    )
                )
        except IntegrityError:
            raise Conflict(f"A user with email {user.email} exists") from None
        return user.id

    async def sign_in(self, email: str, password: str, address: str) -> str:
        """A new session's cookie secret, or AccessDenied / TooManyAttempts."""
        try:
            email = normalise_email(email)
        except InvalidInput:
            email = email.strip().lower()[:254]
        address = address[:64]
        async with self._sessions() as session:
            await self._check_rate(session, email, address)
            user = await session.scalar(select(User).where(User.email == email))
        valid = self._verify(user.password_hash if user else self._dummy_hash, password)
        if user is None or not valid or not user.active:
            async with self._sessions.begin() as session:
                session.add(LoginFailure(email=email, address=address, at=_now()))
            raise AccessDenied("That email and password do not match an account")
        secret = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            session.add(
                UserSession(
                    token_hash=_digest(secret),
                    user_id=user.id,
                    created_at=_now(),
                    expires_at=_now() + SESSION_LIFETIME,
                )
            )
            # Only this client's failures: a person signing in must not reset a guesser's.
            await session.execute(
                delete(LoginFailure).where(
                    LoginFailure.email == email, LoginFailure.address == address
                )
            )
            if self._hasher.check_needs_rehash(user.password_hash):
                user.password_hash = self._hasher.hash(password)
                session.add(user)
        return secret

    async def _check_rate(self, session: AsyncSession, email: str, address: str) -> None:
        since = _now() - FAILURE_WINDOW
        from_address = select(func.count()).where(
            LoginFailure.address == address, LoginFailure.at > since
        )
        by_client = await session.scalar(from_address.where(LoginFailure.email == email))
        by_address = await session.scalar(from_address)
        if (by_client or 0) >= MAX_FAILURES_PER_CLIENT or (
            by_address or 0
        ) >= MAX_FAILURES_PER_ADDRESS:
            minutes = int(FAILURE_WINDOW.total_seconds() // 60)
            raise TooManyAttempts(
                f"Too many failed sign-ins from your network; try again in {minutes} "
                'minutes, or set a new password with "Forgot your password?"',
                retry_after=int(FAILURE_WINDOW.total_seconds()),
            )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password[:1024])
        except (VerificationError, InvalidHashError):
            return False

    async def user_for_session(self, secret: str | None) -> CurrentUser | None:
        if not secret or len(secret) > 100:
            return None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(User)
                    .join(UserSession, UserSession.user_id == User.id)
                    .where(
                        UserSession.token_hash == _digest(secret),
                        UserSession.expires_at > _now(),
                        User.active.is_(True),
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            organisations = (
                await session.scalars(
                    select(Membership.organisation_id).where(Membership.user_id == row.id)
                )
            ).all()
        return CurrentUser(row.id, row.email, row.name, tuple(organisations))

    async def set_active(self, email: str, active: bool) -> int:
        """Suspend (or reinstate) an account: its sessions end with a suspension, and it
        cannot sign in until reinstated. Answers the user's id."""
        address = email.strip().lower()
        async with self._sessions.begin() as session:
            user = await session.scalar(select(User).where(User.email == address))
            if user is None:
                raise InvalidInput(f"There is no account for {address[:100]}")
            user.active = active
            if not active:
                await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
            return user.id

    async def is_active(self, user_id: int) -> bool:
        """Whether the account may still act (not suspended)."""
        async with self._sessions() as session:
            active = await session.scalar(select(User.active).where(User.id == user_id))
        return bool(active)

    async def user_by_email(self, email: str) -> CurrentUser | None:
        """An active user by email, for command-line tools acting as someone."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(User).where(User.email == email.strip().lower(), User.active.is_(True))
            )
            if row is None:
                return None
            organisations = (
                await session.scalars(
                    select(Membership.organisation_id).where(Membership.user_id == row.id)
                )
            ).all()
        return CurrentUser(row.id, row.email, row.name, tuple(organisations))

    async def sign_out(self, secret: str | None) -> None:
        if secret:
            async with self._sessions.begin() as session:
                await session.execute(
                    delete(UserSession).where(UserSession.token_hash == _digest(secret))
                )

    async def administered(self, user: CurrentUser) -> list[int]:
        """The organisations this user administers."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Membership.organisation_id).where(
                    Membership.user_id == user.id, Membership.role == "admin"
                )
            )
            return list(rows)

    async def organisations_of(self, user: CurrentUser) -> list[tuple[int, str, str]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Organisation.id, Organisation.code, Organisation.name)
                .where(Organisation.id.in_(user.organisation_ids))
                .order_by(Organisation.name)
            )
        return [(r.id, r.code, r.name) for r in rows]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)
