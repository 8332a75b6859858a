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
from server.domain.signin import password_allowed
from server.storage.models import (
    LoginFailure,
    Membership,
    Organisation,
    OrganisationSignIn,
    User,
    UserSession,
)

SESSION_LIFETIME = timedelta(hours=12)
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CLIENT = 5  # for one account from one client address
MAX_FAILURES_PER_ADDRESS = 30  # for any accounts from one client address
PASSWORDS_FORBIDDEN = (
    "Your organisation signs you in with its own account, not a password here: leave the "
    "password empty and choose Sign in"
)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: int
    email: str
    name: str
    organisation_ids: tuple[int, ...]


def password_hasher(profile: str = "standard") -> PasswordHasher:
    """argon2id at the library's recommended cost, or (``fast-for-tests``, refused by the
    settings outside the test environment) at its cheapest. A hash records its own
    parameters, so either verifies the other's hashes; a standard hasher upgrades a cheap
    hash at the next sign-in."""
    if profile == "fast-for-tests":
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()


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
        self,
        email: str,
        name: str,
        password: str | None,
        organisation_code: str,
        *,
        admin: bool = False,
        break_glass: bool = False,
    ) -> int:
        organisation_id = await self.organisation_id(organisation_code)
        user = User(
            email=normalise_email(email),
            name=check_name(name),
            # None: no local password (single sign-on only); argon2 never verifies "".
            password_hash=("" if password is None else self._hasher.hash(check_password(password))),
            active=True,
            created_at=_now(),
            break_glass=break_glass,
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
        if not await self._password_allowed(user):
            raise AccessDenied(PASSWORDS_FORBIDDEN)
        secret = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            self.add_session(session, user.id, secret, SESSION_LIFETIME)
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

    @staticmethod
    def add_session(session: AsyncSession, user_id: int, secret: str, lifetime: timedelta) -> None:
        """A signed-in browser for ``user_id`` whose cookie holds ``secret`` (password and
        single sign-on open sessions the same way; only the lifetime differs)."""
        now = _now()
        session.add(
            UserSession(
                token_hash=_digest(secret),
                user_id=user_id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )

    async def _password_allowed(self, user: User) -> bool:
        """Whether a local password may sign ``user`` in (decision 83)."""
        if user.break_glass:
            return True
        async with self._sessions() as session:
            forbidding = await session.scalar(
                select(func.count())
                .select_from(Membership)
                .join(
                    OrganisationSignIn,
                    OrganisationSignIn.organisation_id == Membership.organisation_id,
                )
                .where(Membership.user_id == user.id, OrganisationSignIn.forbid_passwords)
            )
        return password_allowed(forbidden=bool(forbidding), break_glass=user.break_glass)

    async def set_break_glass(self, email: str, allowed: bool) -> None:
        """Let (or stop) one account use its local password where passwords are forbidden."""
        async with self._sessions.begin() as session:
            user = await session.scalar(select(User).where(User.email == email.strip().lower()))
            if user is None:
                raise InvalidInput(f"There is no account for {email.strip().lower()[:100]}")
            user.break_glass = allowed

    async def check_sign_in_rate(self, label: str, address: str) -> None:
        """TooManyAttempts when this client failed too often (single sign-on counts its
        refused callbacks here too, under ``label``, with the same limits)."""
        async with self._sessions() as session:
            await self._check_rate(session, label[:254], address[:64])

    async def record_failure(self, label: str, address: str) -> None:
        async with self._sessions.begin() as session:
            session.add(LoginFailure(email=label[:254], address=address[:64], at=_now()))

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
