"""DPIAs as records: references, statuses, party roles, and the input rules."""

from __future__ import annotations

import enum

from server.domain.errors import InvalidInput


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
        return self.value.replace("_", " ").capitalize().replace("Dpo", "DPO")

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


class PartyRole(enum.StrEnum):
    CONTROLLER = "controller"
    JOINT_CONTROLLER = "joint_controller"
    PROCESSOR = "processor"
    RECIPIENT = "recipient"


def reference(organisation_code: str, year: int, number: int) -> str:
    return f"DPIA-{organisation_code}-{year}-{number}"


def check_title(raw: str) -> str:
    title = " ".join(raw.split())
    if len(title) < 3:
        raise InvalidInput("a title of at least 3 characters is required")
    if len(title) > 300:
        raise InvalidInput("the title is longer than 300 characters")
    if any(ord(c) < 32 for c in title):
        raise InvalidInput("the title contains control characters")
    return title
