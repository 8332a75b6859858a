"""Comments on a DPIA's sections: who may comment, reply and resolve, and what a valid one is.

``comment_policy`` is the one rule for every channel (the browser, an API token, an email
reply), for a new comment and for a reply to one alike; ``resolve_policy`` says who may
mark a comment resolved or open it again; ``check_comment`` is what a comment may say and
where, ``check_reply`` what a reply may say.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.access import Role
from server.domain.content import WHOLE
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, CommentNotFound, DpiaLocked, InvalidInput
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
                f"You take part in this DPIA as {role.in_text}, who cannot comment; "
                "ask an owner for another role"
            )
        )
    return ALLOWED


@dataclass(frozen=True, slots=True)
class NewReply:
    text: str
    author_participant: int | None
    author_name: str
    channel: str
    actor: str


@dataclass(frozen=True, slots=True)
class CommentFacts:
    """What the rules need to know of an existing comment."""

    id: str
    section: str
    author_participant: int | None  # None: posted with an API token
    repliers: tuple[int, ...]  # participants who replied, in order, without repeats
    resolved: bool


def resolve_policy(
    role: Role, status: DpiaStatus | None, *, is_author: bool, resolved: bool
) -> Verdict:
    """May someone with ``role`` resolve (``resolved`` True) or reopen a comment?

    The comment's author, owners, editors and the DPO may (decision 68): the author closes
    their own question, the people who answer for the document decide that a point is
    dealt with, and the DPO's advice is theirs to close. A commenter may not close someone
    else's point. A locked DPIA refuses everyone, as commenting does.
    """
    if status is not None and status.is_locked:
        return refused(DpiaLocked(locked_message(status)))
    if is_author and role.can_comment:
        return ALLOWED
    if role.can_write or role is Role.DPO:
        return ALLOWED
    verb = "resolve" if resolved else "reopen"
    return refused(
        AccessDenied(
            f"You take part in this DPIA as {role.in_text}, who can {verb} only your own comments; "
            "ask its author, an owner, an editor or the DPO"
        )
    )


def require_comment(found: CommentFacts | None, comment_id: str) -> CommentFacts:
    """The comment, or CommentNotFound naming the id that was asked for."""
    if found is None:
        raise CommentNotFound(
            f"There is no comment {comment_id[:40]!r} on this DPIA; reload to see its comments"
        )
    return found


def check_reply(text: str) -> str:
    """The cleaned text of a reply, or InvalidInput: the same limits as a comment."""
    cleaned = _clean(text)
    if not cleaned:
        raise InvalidInput("A reply needs some text")
    if len(cleaned) > MAX_COMMENT:
        raise InvalidInput(f"A reply is at most {MAX_COMMENT} characters")
    return cleaned


def _clean(text: str) -> str:
    return "".join(c for c in text if c in "\n\t" or ord(c) >= 32).strip()


def check_comment(template: Template, section: str, field: str | None, text: str) -> str:
    """The cleaned text, or InvalidInput naming what is wrong.

    A comment is on a section (optionally one of its fields), or on the whole DPIA
    (``WHOLE``, no field), where an email reply goes once its section is gone.
    """
    sections = {s["id"]: s for s in template.sections}
    if section == WHOLE and field is None:
        pass
    elif section not in sections:
        raise InvalidInput(f"This DPIA has no section {section[:40]!r}")
    elif field is not None and field not in {f["id"] for f in sections[section]["fields"]}:
        raise InvalidInput(f"That section has no field {field[:40]!r}")
    cleaned = _clean(text)
    if not cleaned:
        raise InvalidInput("A comment needs some text")
    if len(cleaned) > MAX_COMMENT:
        raise InvalidInput(f"A comment is at most {MAX_COMMENT} characters")
    return cleaned
