"""DPIAs as records: references, statuses, party roles, and the input rules."""

from __future__ import annotations

import enum

from server.domain import wording
from server.domain.access import Role
from server.domain.errors import AccessDenied, Conflict, InvalidInput
from server.domain.verdicts import ALLOWED, Verdict, refused


class DpiaStatus(enum.StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    DPO_REVIEW = "dpo_review"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    REJECTED = "rejected"
    IN_FORCE = "in_force"
    UNDER_REVIEW = "under_review"
    SUPERSEDED = "superseded"
    ARCHIVED = "archived"
    ABANDONED = "abandoned"

    @property
    def label(self) -> str:
        return wording.DPIA_STATUSES[self.value]

    @property
    def is_locked(self) -> bool:
        """No channel (browser, API, email) may change the content: an approved DPIA is
        immutable (changes go into a new version) and a closed one is finished."""
        return self in _LOCKED


_LOCKED = frozenset(
    {
        DpiaStatus.APPROVED,
        DpiaStatus.APPROVED_WITH_CONDITIONS,
        DpiaStatus.REJECTED,
        DpiaStatus.IN_FORCE,
        DpiaStatus.UNDER_REVIEW,
        DpiaStatus.SUPERSEDED,
        DpiaStatus.ARCHIVED,
        DpiaStatus.ABANDONED,
    }
)


def locked_message(status: DpiaStatus) -> str:
    """Why a locked DPIA refuses a change, the same on every channel."""
    return (
        f"Read-only: this DPIA is {status.label.lower()}; changes go into a new version "
        "started from it"
    )


class PartyRole(enum.StrEnum):
    CONTROLLER = "controller"
    JOINT_CONTROLLER = "joint_controller"
    PROCESSOR = "processor"
    RECIPIENT = "recipient"

    @property
    def label(self) -> str:
        return wording.PARTY_ROLES[self.value]


def reference(organisation_code: str, year: int, number: int) -> str:
    return f"DPIA-{organisation_code}-{year}-{number}"


def check_title(raw: str) -> str:
    title = " ".join(raw.split())
    if len(title) < 3:
        raise InvalidInput("A title of at least 3 characters is required")
    if len(title) > 300:
        raise InvalidInput("The title is longer than 300 characters")
    if any(ord(c) < 32 for c in title):
        raise InvalidInput("The title contains control characters")
    return title


# -- policies: who may change who takes part --------------------------------------------------


def manage_policy(role: Role) -> Verdict:
    """Inviting, changing roles, removing people, the parties and the reviewers: owners."""
    if not role.can_manage:
        return refused(AccessDenied("Only the DPIA's owners can manage its participants"))
    return ALLOWED


def owner_kept_policy(role: Role, new_role: Role | None, owners: int) -> Verdict:
    """A participant of ``role`` becomes ``new_role`` (None: is removed) while the DPIA has
    ``owners`` owners: a DPIA keeps at least one owner."""
    if role is Role.OWNER and new_role is not Role.OWNER and owners <= 1:
        return refused(Conflict("A DPIA needs at least one owner: make someone else owner first"))
    return ALLOWED


def inbound_mail_policy(role: Role) -> Verdict:
    """Reading the DPIA's inbound mail and posting or discarding held replies: owners."""
    if not role.can_manage:
        return refused(AccessDenied("Only the DPIA's owners see its inbound mail"))
    return ALLOWED
