"""Organisations' sign-in settings, sign-ins on their way to a provider, and people's
identities at providers: the records behind single sign-on (``domain.signin`` has the rules).

A sign-in sent to a provider is remembered here, not in the browser: a random ``state``
(only its SHA-256 is stored), the ``nonce`` the ID token must carry and the PKCE verifier.
Coming back claims it once, with a conditional update, so a callback URL used twice (a
replayed state, and with it a replayed nonce) is refused, even by two processes at once.

Administrative changes go to ``on_change`` inside the transaction that makes them: an
organisation's settings saved, an account made just in time, a role set by the provider's
administrator group. Its signature is the deployment's administrative audit chain's
``append(session, kind, actor=, channel=, organisation_id=, data=)``, which the composition
root wires in where there is one; until then they are logged.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import Conflict, InvalidInput, InvalidToken
from server.domain.people import check_org_code
from server.domain.signin import (
    ADMIN_ROLE,
    Identity,
    LinkOutcome,
    ProviderSettings,
    SignInRefused,
    check_domains,
    check_identity,
    check_issuer,
    check_text,
    email_domain,
    link_outcome,
    membership_role,
    origin_of,
)
from server.services.accounts import AccountService, CurrentUser
from server.services.admin_audit import ChangeRecorder, log_change
from server.storage.models import (
    ExternalIdentity,
    Membership,
    Organisation,
    OrganisationDomain,
    OrganisationSignIn,
    SignInAttempt,
    User,
)

log = logging.getLogger("opendpia.signin")
ATTEMPT_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in that came back from its provider, claimed (it cannot be claimed again)."""

    organisation_id: int
    nonce: str
    code_verifier: str
    next_path: str


@dataclass(frozen=True, slots=True)
class SignedIn:
    secret: str  # the session cookie's
    user_id: int
    provisioned: bool


class SignInDirectory:
    """Which provider signs in which email, and what each organisation has set."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        on_change: ChangeRecorder = log_change,
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change

    async def for_email(self, email: str) -> ProviderSettings | None:
        """The provider of the organisation that owns ``email``'s domain, if it has one."""
        async with self._sessions() as session:
            organisation_id = await session.scalar(
                select(OrganisationDomain.organisation_id).where(
                    OrganisationDomain.domain == email_domain(email)
                )
            )
        if organisation_id is None:
            return None
        return await self.for_organisation(organisation_id)

    async def for_organisation(self, organisation_id: int) -> ProviderSettings | None:
        async with self._sessions() as session:
            row = await session.execute(
                select(Organisation, OrganisationSignIn)
                .outerjoin(
                    OrganisationSignIn,
                    OrganisationSignIn.organisation_id == Organisation.id,
                )
                .where(Organisation.id == organisation_id)
            )
            found = row.one_or_none()
            if found is None or found[1] is None:
                return None
            organisation, settings = found
            domains = await session.scalars(
                select(OrganisationDomain.domain)
                .where(OrganisationDomain.organisation_id == organisation_id)
                .order_by(OrganisationDomain.domain)
            )
            return _settings(organisation, settings, domains)

    async def signs_in_elsewhere(self, organisation_id: int) -> bool:
        """Whether the organisation's people sign in through its own provider (an invited
        person then needs no password of ours)."""
        return await self.for_organisation(organisation_id) is not None

    async def provider_origins(self) -> set[str]:
        """The origins (scheme://host[:port]) of every organisation's issuer."""
        async with self._sessions() as session:
            issuers = await session.scalars(select(OrganisationSignIn.issuer).distinct())
            return {origin_of(issuer) for issuer in issuers}

    async def organisation(self, code: str) -> tuple[int, str, str]:
        """(id, code, name) of the organisation with ``code``; InvalidInput if none."""
        try:
            code = check_org_code(code)
        except InvalidInput:
            raise InvalidInput("There is no such organisation") from None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(Organisation.id, Organisation.code, Organisation.name).where(
                        Organisation.code == code
                    )
                )
            ).one_or_none()
        if row is None:
            raise InvalidInput(f"There is no organisation with code {code}")
        return row.id, row.code, row.name

    async def domains_of(self, organisation_id: int) -> tuple[str, ...]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(OrganisationDomain.domain)
                .where(OrganisationDomain.organisation_id == organisation_id)
                .order_by(OrganisationDomain.domain)
            )
            return tuple(rows)

    async def may_administer(self, user: CurrentUser, organisation_id: int) -> bool:
        """The organisation's administrators, and the deployment's, may change how its
        people sign in."""
        async with self._sessions() as session:
            role = await session.scalar(
                select(Membership.role).where(
                    Membership.user_id == user.id,
                    Membership.organisation_id == organisation_id,
                )
            )
            deployment = await session.scalar(
                select(User.deployment_admin).where(User.id == user.id)
            )
        return role == ADMIN_ROLE or bool(deployment)

    async def save(
        self,
        code: str,
        *,
        actor: str,
        channel: str,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        domains: str,
        tenant: str = "",
        jit: bool = False,
        admin_group: str = "",
        forbid_passwords: bool = False,
    ) -> ProviderSettings:
        """Set the organisation's provider and domains. ``client_secret`` None keeps the
        stored one (pages never show it back). Domains are unique across organisations."""
        organisation_id, code, _ = await self.organisation(code)
        issuer = check_issuer(issuer)
        client_id = check_text(client_id, "client id", 255, required=True)
        secret = None if client_secret is None else check_text(client_secret, "secret", 1000)
        wanted = check_domains(domains)
        if not wanted:
            raise InvalidInput("Give at least one email domain, like camden.gov.uk")
        values = {
            "issuer": issuer,
            "client_id": client_id,
            "tenant": check_text(tenant, "tenant id", 100),
            "jit": jit,
            "admin_group": check_text(admin_group, "administrator group", 255),
            "forbid_passwords": forbid_passwords,
            "updated_at": _now(),
        }
        async with self._sessions.begin() as session:
            taken = (
                await session.execute(
                    select(OrganisationDomain.domain, Organisation.code)
                    .join(Organisation, Organisation.id == OrganisationDomain.organisation_id)
                    .where(
                        OrganisationDomain.domain.in_(wanted),
                        OrganisationDomain.organisation_id != organisation_id,
                    )
                )
            ).first()
            if taken is not None:
                raise Conflict(
                    f"The domain {taken.domain} belongs to organisation {taken.code}; an "
                    "email domain leads to one organisation only"
                )
            row = await session.get(OrganisationSignIn, organisation_id)
            recorded = [k for k in values if k != "updated_at"]
            before: dict[str, Any] = {}
            if row is not None:
                before = {k: getattr(row, k) for k in recorded}
                before["domains"] = " ".join(
                    await session.scalars(
                        select(OrganisationDomain.domain)
                        .where(OrganisationDomain.organisation_id == organisation_id)
                        .order_by(OrganisationDomain.domain)
                    )
                )
            if row is None:
                if not secret:
                    raise InvalidInput("The client secret is required the first time")
                row = OrganisationSignIn(organisation_id=organisation_id, client_secret=secret)
                session.add(row)
            elif secret:
                row.client_secret = secret
            for key, value in values.items():
                setattr(row, key, value)
            await session.execute(
                delete(OrganisationDomain).where(
                    OrganisationDomain.organisation_id == organisation_id
                )
            )
            session.add_all(
                OrganisationDomain(domain=d, organisation_id=organisation_id) for d in wanted
            )
            details = {k: values[k] for k in recorded}
            details["domains"] = " ".join(sorted(wanted))
            details["secret_changed"] = bool(secret)  # the secret itself is never recorded
            await self._on_change(
                session,
                "sign_in_settings",
                actor=actor,
                channel=channel,
                organisation_id=organisation_id,
                data={"before": before, "after": details},
            )
        found = await self.for_organisation(organisation_id)
        assert found is not None
        return found

    async def begin(self, organisation_id: int, next_path: str) -> tuple[str, str, str]:
        """Remember a sign-in leaving for the provider: (state, nonce, PKCE verifier)."""
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43 to 128
        now = _now()
        async with self._sessions.begin() as session:
            await session.execute(delete(SignInAttempt).where(SignInAttempt.expires_at < now))
            session.add(
                SignInAttempt(
                    state_hash=_digest(state),
                    organisation_id=organisation_id,
                    nonce=nonce,
                    code_verifier=verifier,
                    next_path=next_path[:300],
                    created_at=now,
                    expires_at=now + ATTEMPT_LIFETIME,
                    used_at=None,
                )
            )
        return state, nonce, verifier

    async def claim(self, state: str) -> PendingSignIn:
        """The sign-in ``state`` names, claimed once; InvalidToken saying why not."""
        digest = _digest(state[:200])
        now = _now()
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(SignInAttempt)
                .where(
                    SignInAttempt.state_hash == digest,
                    SignInAttempt.used_at.is_(None),
                    SignInAttempt.expires_at > now,
                )
                .values(used_at=now)
            )
            row = await session.get(SignInAttempt, digest)
            if claimed.rowcount != 1 or row is None:  # type: ignore[attr-defined]
                raise InvalidToken(_unclaimable(row))
            return PendingSignIn(row.organisation_id, row.nonce, row.code_verifier, row.next_path)

    async def sign_in(
        self,
        accounts: AccountService,
        provider: ProviderSettings,
        identity: Identity,
        lifetime: timedelta,
    ) -> SignedIn:
        """Match, link or provision the person (``domain.signin``), set their role from the
        administrator group, and open a session that lasts ``lifetime``."""
        check_identity(identity, provider)
        secret = secrets.token_urlsafe(32)
        now = _now()
        async with self._sessions.begin() as session:
            known = await session.scalar(
                select(ExternalIdentity).where(
                    ExternalIdentity.issuer == provider.issuer,
                    ExternalIdentity.subject == identity.subject,
                )
            )
            by_email = await session.scalar(select(User).where(User.email == identity.email))
            member = None
            if by_email is not None:
                member = await session.get(Membership, (by_email.id, provider.organisation_id))
            outcome = link_outcome(
                identity,
                provider,
                known=known is not None,
                email_account=by_email is not None,
                email_account_is_member=member is not None,
            )
            if outcome is LinkOutcome.KNOWN:
                assert known is not None
                user = await session.get_one(User, known.user_id)
                known.last_sign_in_at = now
                member = await session.get(Membership, (user.id, provider.organisation_id))
            elif outcome is LinkOutcome.LINK:
                assert by_email is not None
                user = by_email
            else:
                user = User(
                    email=identity.email,
                    name=identity.name,
                    password_hash="",  # no local password: argon2 never verifies ""
                    active=True,
                    created_at=now,
                    break_glass=False,
                )
                session.add(user)
                await session.flush()
            if not user.active:
                raise SignInRefused(
                    "Your OpenDPIA account is suspended; ask your organisation's OpenDPIA "
                    "administrator"
                )
            if outcome is not LinkOutcome.KNOWN:
                session.add(
                    ExternalIdentity(
                        issuer=provider.issuer,
                        subject=identity.subject,
                        user_id=user.id,
                        created_at=now,
                        last_sign_in_at=now,
                    )
                )
            previous = member.role if member else None
            role = membership_role(identity, provider, previous)
            if member is None:
                session.add(
                    Membership(user_id=user.id, organisation_id=provider.organisation_id, role=role)
                )
            elif member.role != role:
                member.role = role
            if outcome is LinkOutcome.PROVISION or previous != role:
                await self._on_change(
                    session,
                    "person_provisioned" if outcome is LinkOutcome.PROVISION else "role_set",
                    actor=f"sso:{provider.organisation_code}",
                    channel="sso",
                    organisation_id=provider.organisation_id,
                    data={
                        "before": {"email": user.email, "role": previous} if previous else {},
                        "after": {"email": user.email, "role": role},
                    },
                )
            accounts.add_session(session, user.id, secret, lifetime)
            user_id = user.id
        log.info(
            "single sign-on of user %d through %s (%s)", user_id, provider.issuer, outcome.value
        )
        return SignedIn(secret, user_id, outcome is LinkOutcome.PROVISION)


def _settings(
    organisation: Organisation, row: OrganisationSignIn, domains: Iterable[str]
) -> ProviderSettings:
    return ProviderSettings(
        organisation_id=organisation.id,
        organisation_code=organisation.code,
        organisation_name=organisation.name,
        issuer=row.issuer,
        client_id=row.client_id,
        client_secret=row.client_secret,
        tenant=row.tenant,
        jit=row.jit,
        admin_group=row.admin_group,
        forbid_passwords=row.forbid_passwords,
        domains=tuple(domains),
    )


def _unclaimable(row: SignInAttempt | None) -> str:
    if row is None:
        return (
            "This sign-in was not started here (or has been cleared away); start again from "
            "the sign-in page"
        )
    if row.used_at is not None:
        return (
            "This sign-in has been used already: a link back from a sign-in service works "
            "once. Start again from the sign-in page"
        )
    return "This sign-in took more than 10 minutes; start again from the sign-in page"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)
