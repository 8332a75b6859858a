"""Comments on a DPIA's sections: what a valid one is."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.errors import InvalidInput
from server.domain.templates import Template

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


def check_comment(template: Template, section: str, field: str | None, text: str) -> str:
    """The cleaned text, or InvalidInput naming what is wrong."""
    sections = {s["id"]: s for s in template.sections}
    if section not in sections:
        raise InvalidInput(f"{section[:40]!r} is not a section of this DPIA")
    if field is not None and field not in {f["id"] for f in sections[section]["fields"]}:
        raise InvalidInput(f"{field[:40]!r} is not a field of section {section}")
    cleaned = "".join(c for c in text if c in "\n\t" or ord(c) >= 32).strip()
    if not cleaned:
        raise InvalidInput("a comment needs some text")
    if len(cleaned) > MAX_COMMENT:
        raise InvalidInput(f"a comment is at most {MAX_COMMENT} characters")
    return cleaned
