"""Email preferences: how often a person hears by email."""

from __future__ import annotations

import enum
from datetime import timedelta

from server.domain.errors import InvalidInput


class MailMode(enum.StrEnum):
    IMMEDIATE = "immediate"
    HOURLY = "hourly"
    DAILY = "daily"
    OFF = "off"

    @property
    def period(self) -> timedelta | None:
        """How long a digest gathers; None when there is no digest."""
        return {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}.get(self.value)

    @property
    def label(self) -> str:
        return {
            "immediate": "Immediately",
            "hourly": "Hourly digest",
            "daily": "Daily digest",
            "off": "No email",
        }[self.value]


def mail_mode(raw: str) -> MailMode:
    try:
        return MailMode(raw)
    except ValueError:
        raise InvalidInput(
            f"There is no email setting {raw[:20]!r}: choose "
            + ", ".join(m.value for m in MailMode)
        ) from None


def effective(participant: str | None, user: str | None) -> MailMode:
    """A DPIA's own choice, else the person's global one, else immediate."""
    return MailMode(participant or user or MailMode.IMMEDIATE.value)
