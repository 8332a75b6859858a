"""The tool's own data protection rules (decisions 92-95): which DPIAs are closed, when a
closed one's retention ends, who may delete a DPIA or erase a person, and the pseudonym an
erased person is given.

Closed means finished with no processing resting on it: rejected, abandoned, archived or
superseded by a newer version. Approved, in force and under review DPIAs are the live record
of processing that goes on, so retention does not run for them.
"""

from __future__ import annotations

import calendar
import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, Conflict, InvalidInput
from server.domain.verdicts import ALLOWED, Verdict, refused

CLOSED = frozenset(
    {DpiaStatus.REJECTED, DpiaStatus.ABANDONED, DpiaStatus.ARCHIVED, DpiaStatus.SUPERSEDED}
)
MIN_RETENTION_MONTHS = 1
MAX_RETENTION_MONTHS = 600
PSEUDONYM_PREFIX = "Former participant"


class DeletionRule(enum.StrEnum):
    """Under which rule a DPIA was deleted (written on its tombstone)."""

    DRAFT = "draft deleted by an owner"
    RETENTION = "retention period ended"


def is_closed(status: DpiaStatus) -> bool:
    return status in CLOSED


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, on the last day of a shorter month if need be."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expires_at(status: DpiaStatus, closed_at: datetime | None, months: int) -> datetime | None:
    """When a DPIA's retention ends: None while it is open (or its closing is unknown)."""
    if not is_closed(status) or closed_at is None:
        return None
    return add_months(closed_at, months)


def is_expired(status: DpiaStatus, closed_at: datetime | None, months: int, now: datetime) -> bool:
    end = expires_at(status, closed_at, months)
    return end is not None and end <= now


def check_retention_months(raw: str) -> int:
    """A retention period as typed on the page or the command line."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise InvalidInput("Enter the retention period as a whole number of months, e.g. 72")
    months = int(text)
    if not MIN_RETENTION_MONTHS <= months <= MAX_RETENTION_MONTHS:
        raise InvalidInput(
            f"The retention period must be between {MIN_RETENTION_MONTHS} and "
            f"{MAX_RETENTION_MONTHS} months"
        )
    return months


def delete_policy(role: Role, status: DpiaStatus, expired: bool) -> DeletionRule:
    """Under which rule an owner may delete this DPIA now, or the refusal that says why not.

    A draft may be deleted by its owners at any time; a closed DPIA only once its retention
    has ended; anything else is the record of a decision and stays."""
    if not role.can_manage:
        raise AccessDenied("Only the DPIA's owners can delete it")
    if status is DpiaStatus.DRAFT:
        return DeletionRule.DRAFT
    if is_closed(status) and expired:
        return DeletionRule.RETENTION
    if is_closed(status):
        raise Conflict(
            "This DPIA is closed and is kept until its retention period ends; it can be "
            "deleted then"
        )
    raise Conflict(
        f"This DPIA is {status.label.lower()}: only a draft, or a closed DPIA whose retention "
        "has ended, can be deleted"
    )


@dataclass(frozen=True, slots=True)
class Eraser:
    """Who asks to erase someone, as the rule needs to know them."""

    deployment_admin: bool  # the deployment's administrator (or the command line)
    administers: frozenset[int]  # organisations they administer
    owns: frozenset[str]  # DPIAs they own


@dataclass(frozen=True, slots=True)
class Erasable:
    """The person to erase, as the rule needs to know them."""

    has_account: bool
    organisations: frozenset[int]  # their memberships
    dpias: frozenset[str]  # DPIAs they take part in
    dpia_organisations: frozenset[int] = frozenset()  # the lead organisations of those
    sole_owner_of: frozenset[str] = frozenset()  # DPIAs where they are the only owner


def erase_policy(eraser: Eraser, person: Erasable) -> Verdict:
    """The deployment administrator may erase anyone. A member (someone with an account) may
    also be erased by an administrator of one of their organisations. An email-only partner
    may also be erased by an owner of every DPIA they take part in: erasure reaches all of
    them, so an owner of only some must ask the deployment administrator. Nobody may erase
    the only owner of a DPIA (decision 93, as ``owner_kept_policy`` for removal)."""
    if person.sole_owner_of:
        # An erased owner can never sign in again: the DPIA would be left without one.
        return refused(
            Conflict(
                f"They are the only owner of {', '.join(sorted(person.sole_owner_of))}: "
                "make someone else owner first"
            )
        )
    if eraser.deployment_admin:
        return ALLOWED
    if person.has_account:
        if person.organisations & eraser.administers:
            return ALLOWED
        return refused(
            AccessDenied(
                "Only an administrator of their organisation or the deployment's "
                "administrator can erase a member"
            )
        )
    if person.dpias and person.dpias <= eraser.owns:
        return ALLOWED
    return refused(
        AccessDenied(
            "An email-only participant can be erased by an owner of every DPIA they take part "
            "in; ask the deployment's administrator"
        )
    )


def pseudonym_code(secret_key: str, email: str) -> str:
    """Six hex digits, the same for the same address under the same key (stable: an erased
    person is one pseudonym everywhere), and not the address (HMAC, not a plain hash, so it
    cannot be checked against a list of addresses without the key)."""
    normalised = email.strip().lower().encode()
    digest = hmac.new(secret_key.encode(), b"opendpia.erasure.v1:" + normalised, hashlib.sha256)
    return digest.hexdigest()[:6]


def pseudonym(code: str) -> str:
    return f"{PSEUDONYM_PREFIX} {code}"


def pseudonymous_address(code: str) -> str:
    """An address that is unique per person and can never receive mail (RFC 2606)."""
    return f"erased-{code}@erased.invalid"


def closed_at_after(
    status: DpiaStatus, closed_at: datetime | None, now: datetime
) -> datetime | None:
    """When a DPIA that is now ``status`` closed: retention counts from its first closed
    status (archiving a rejected DPIA does not restart it); reopening clears it."""
    if not is_closed(status):
        return None
    return closed_at or now


MIN_NAME_LENGTH = 3


def redactor(names: Iterable[str], emails: Iterable[str], code: str) -> Callable[[str], str]:
    """A function replacing the person's names (each spelling they were known by, whole,
    any case) with their pseudonym and their addresses with the pseudonymous address.

    Names shorter than three letters are left alone: replacing "Al" everywhere would
    rewrite other people's words. Longer spellings are tried first, so "Alice Smith" is
    replaced whole rather than "Alice" inside it, and only whole words are replaced."""
    alias, address = pseudonym(code), pseudonymous_address(code)
    targets = {e.strip().lower(): address for e in emails if e.strip()}
    for name in names:
        cleaned = " ".join(name.split())
        if len(cleaned) >= MIN_NAME_LENGTH and cleaned.lower() not in targets:
            targets[cleaned.lower()] = alias
    if not targets:
        return lambda text: text
    ordered = sorted(targets, key=len, reverse=True)
    # Whole words only: "Alice" goes, "Alicestone" stays.
    alternatives = "|".join(re.escape(t) for t in ordered)
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: targets[m.group(0).lower()], text)

    return rewrite
