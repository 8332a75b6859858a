"""Comments on a DPIA's sections: who may comment, and what a valid one is.

``comment_policy`` is the one rule for every channel (the browser, an API token, an email
reply); ``check_comment`` is what a comment may say and where.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.access import Role
from server.domain.content import WHOLE
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, DpiaLocked, InvalidInput
from server.domain.templates import Template
from server.domain.verdicts import ALLOWED, Verdict, refused

MAX_COMMENT = 5000


@dataclass(frozen=True, slots=True)
class NewComment:
    section: str
    field: str | None
    text: str
    author_participant: int | None
    author_name: str
    channel: str
    actor: str


def comment_policy(role: Role, status: DpiaStatus | None) -> Verdict:
    """May someone with ``role`` comment on a DPIA that is ``status``?

    ``status`` is None for a tooling document with no DPIA record (decision 19). A locked
    DPIA refuses everyone alike, so that is said first; then the role decides.
    """
    if status is not None and status.is_locked:
        return refused(DpiaLocked(locked_message(status)))
    if not role.can_comment:
        return refused(
            AccessDenied(
                f"your role on this DPIA is {role.value}, which cannot comment; "
                "ask an owner for another role"
            )
        )
    return ALLOWED


def check_comment(template: Template, section: str, field: str | None, text: str) -> str:
    """The cleaned text, or InvalidInput naming what is wrong.

    A comment is on a section (optionally one of its fields), or on the whole DPIA
    (``WHOLE``, no field), where an email reply goes once its section is gone.
    """
    sections = {s["id"]: s for s in template.sections}
    if section == WHOLE and field is None:
        pass
    elif section not in sections:
        raise InvalidInput(f"{section[:40]!r} is not a section of this DPIA")
    elif field is not None and field not in {f["id"] for f in sections[section]["fields"]}:
        raise InvalidInput(f"{field[:40]!r} is not a field of section {section}")
    cleaned = "".join(c for c in text if c in "\n\t" or ord(c) >= 32).strip()
    if not cleaned:
        raise InvalidInput("a comment needs some text")
    if len(cleaned) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT} characters")
    return cleaned
