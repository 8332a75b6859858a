"""What a yes-or-no policy answers: allowed, or refused with the error that says why.

A policy that only decides whether someone may do something (comment, restore, manage the
participants) returns a ``Verdict``; use cases ``require`` it (raising the refusal, one of
the domain errors) and pages may ask ``allowed`` to show or hide the action. A policy that
computes what an action leads to (a section's next state, a transition, what a sign-off
records) returns that or raises, as ``domain.workflow`` always has.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.errors import DomainError


@dataclass(frozen=True, slots=True)
class Verdict:
    """Allowed when ``refusal`` is None; otherwise the error to tell the person."""

    refusal: DomainError | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    def require(self) -> None:
        """Raise the refusal, if any."""
        if self.refusal is not None:
            raise self.refusal


ALLOWED = Verdict()


def refused(error: DomainError) -> Verdict:
    return Verdict(error)
