"""Sign-in through an organisation's own identity provider (OpenID Connect): the rules.

Pure functions over plain values; the services read and write the records, the OpenID
client (``services.oidc``) talks to the provider and validates its ID tokens.

Errors (both ``DomainError``, so every failure becomes a page, never a 500)::

    AccessDenied
    └── SignInRefused        the provider, or a check of what it said, refused this sign-in
    ProviderUnavailable      the provider could not be reached or answered nonsense

Who a person is: the provider's stable subject, Entra's ``oid`` when present (the same for
one person across every application of the tenant), else ``sub``, together with the issuer.
Never the email alone: an email can be reassigned, and any provider can claim any address.

The linking rule (decision 82): an unknown subject whose email already has an account is
linked to that account only when (1) the email's domain is one of the organisation's
domains (already required of every sign-in), (2) the account is a member of that
organisation, and (3) the provider vouches for the address: the token says
``email_verified: true``, or the organisation pins its own tenant (Entra issues no
``email_verified``; a tenant's addresses are its own directory's). Otherwise the sign-in is
refused with a message naming what to ask the administrator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from server.domain.errors import AccessDenied, DomainError, InvalidInput
from server.domain.people import check_name, normalise_email

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ADMIN_ROLE = "admin"
MEMBER_ROLE = "member"


class SignInRefused(AccessDenied):
    """The provider refused, or what it said failed a check; the message says what to do."""


class ProviderUnavailable(DomainError):
    """The organisation's provider could not be reached, timed out or answered nonsense."""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """An organisation's identity provider, as its administrators set it."""

    organisation_id: int
    organisation_code: str
    organisation_name: str
    issuer: str
    client_id: str
    client_secret: str
    tenant: str  # Entra's ``tid`` the tokens must carry; "" accepts any
    jit: bool  # a first sign-in creates the person's account in the organisation
    admin_group: str  # a value of the ``groups`` claim that makes an administrator; ""
    forbid_passwords: bool
    domains: tuple[str, ...]

    @property
    def masked_secret(self) -> str:
        """What a page may show of the client secret: enough to recognise it, no more."""
        if not self.client_secret:
            return ""
        return "•" * 8 + self.client_secret[-4:] if len(self.client_secret) > 12 else "•" * 8


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in, read from a validated ID token."""

    subject: str
    email: str
    email_verified: bool
    name: str
    tenant: str
    groups: tuple[str, ...]


class LinkOutcome(StrEnum):
    KNOWN = "known"  # this (issuer, subject) signed in before
    LINK = "link"  # an existing account of the organisation, by the rule above
    PROVISION = "provision"  # a new account, just in time


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def check_domains(raw: str) -> tuple[str, ...]:
    """Email domains from text separated by commas, spaces or lines; each checked."""
    found: list[str] = []
    for part in re.split(r"[\s,;]+", raw.strip().lower()):
        domain = part.removeprefix("@").rstrip(".")
        if not domain:
            continue
        if not _DOMAIN.fullmatch(domain):
            raise InvalidInput(
                f"The domain {domain[:60]!r} is not an email domain; write domains like "
                "camden.gov.uk"
            )
        if domain not in found:
            found.append(domain)
    if len(found) > 20:
        raise InvalidInput("An organisation can have at most 20 email domains")
    return tuple(found)


def check_issuer(raw: str) -> str:
    """The issuer URL: HTTPS, or plain HTTP on this machine only (development, tests)."""
    issuer = raw.strip()
    parts = urlsplit(issuer)
    local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if len(issuer) > 500 or not parts.hostname or not (parts.scheme == "https" or local):
        raise InvalidInput(
            "The issuer is the provider's address starting with https://, for Entra ID "
            "https://login.microsoftonline.com/<tenant id>/v2.0"
        )
    if parts.query or parts.fragment:
        raise InvalidInput("The issuer has no ?query or #fragment")
    return issuer.rstrip("/") if parts.path not in ("", "/") else issuer


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a Content-Security-Policy source."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_text(raw: str, what: str, maximum: int, *, required: bool = False) -> str:
    value = raw.strip()
    if required and not value:
        raise InvalidInput(f"The {what} is required")
    if len(value) > maximum:
        raise InvalidInput(f"The {what} is longer than {maximum} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(f"The {what} contains control characters")
    return value


def identity_from_claims(claims: Mapping[str, object]) -> Identity:
    """The person of a validated ID token (``oid`` before ``sub``: decision 82)."""
    subject = claims.get("oid") or claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SignInRefused("Your organisation's sign-in service did not say who you are")
    raw_email = claims.get("email") or claims.get("preferred_username") or ""
    try:
        email = normalise_email(raw_email if isinstance(raw_email, str) else "")
    except InvalidInput:
        raise SignInRefused(
            "Your organisation's sign-in service did not give your email address; ask its "
            "administrators to release the email claim to OpenDPIA"
        ) from None
    name = claims.get("name")
    try:
        display = check_name(name if isinstance(name, str) else "", maximum=200)
    except InvalidInput:
        display = email.partition("@")[0]
    groups = claims.get("groups")
    tenant = claims.get("tid")
    return Identity(
        subject=subject,
        email=email,
        email_verified=claims.get("email_verified") is True,
        name=display,
        tenant=tenant if isinstance(tenant, str) else "",
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
    )


def check_identity(identity: Identity, settings: ProviderSettings) -> None:
    """The tenant and the email's domain are the organisation's, or SignInRefused."""
    if settings.tenant and identity.tenant != settings.tenant:
        raise SignInRefused(
            f"You signed in with an account of another organisation's directory, not "
            f"{settings.organisation_name}'s; sign out of it at the provider and use your "
            f"{settings.organisation_name} account"
        )
    if email_domain(identity.email) not in settings.domains:
        raise SignInRefused(
            f"The account you signed in with ({identity.email}) is not an address of "
            f"{settings.organisation_name}; use your work account"
        )


def link_outcome(
    identity: Identity,
    settings: ProviderSettings,
    *,
    known: bool,
    email_account: bool,
    email_account_is_member: bool,
) -> LinkOutcome:
    """Whether to sign in a known person, link an existing account, or provision one."""
    if known:
        return LinkOutcome.KNOWN
    if email_account:
        if not email_account_is_member:
            raise SignInRefused(
                f"An OpenDPIA account with {identity.email} exists outside "
                f"{settings.organisation_name}; ask your administrator to move it"
            )
        if not (identity.email_verified or settings.tenant):
            raise SignInRefused(
                f"An OpenDPIA account with {identity.email} exists, and your organisation's "
                "sign-in service did not confirm that the address is yours; ask your "
                "administrator to link your account"
            )
        return LinkOutcome.LINK
    if not settings.jit:
        raise SignInRefused(
            f"{settings.organisation_name} adds people to OpenDPIA itself, and you have no "
            "account yet; ask your organisation's OpenDPIA administrator to invite you"
        )
    return LinkOutcome.PROVISION


def membership_role(identity: Identity, settings: ProviderSettings, current: str | None) -> str:
    """The organisation role after this sign-in: the admin group decides when it is set."""
    if settings.admin_group:
        return ADMIN_ROLE if settings.admin_group in identity.groups else MEMBER_ROLE
    return current or MEMBER_ROLE


def password_allowed(*, forbidden: bool, break_glass: bool) -> bool:
    """A local password works unless the organisation forbids them (break-glass excepted)."""
    return break_glass or not forbidden
