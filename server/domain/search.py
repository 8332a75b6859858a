"""The searchable library: what of a document is searched, what a query may be, and how a
matching passage is shown.

A document is searched as three texts: its title, its answers as they read to a person
(``domain.readable``: option labels rather than codes, dates in words, table rows and risks
as their cells) and its comments with their replies. Control characters are taken out of
all three, so the two that mark a match in a passage (:data:`HIT_START`, :data:`HIT_END`)
can only come from the database's highlighter, never from what someone wrote.

A query is words, nothing else: every run of letters and digits is a word and all of them
must match. No operator, quote or bracket of either database's query language reaches it,
so no input can make a query fail.

Pure: template, content and strings in; strings and tuples out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from server.domain.content import Content
from server.domain.errors import InvalidInput
from server.domain.readable import Cards, Grid, Text, read_content
from server.domain.templates import Template

HIT_START = "\x02"
HIT_END = "\x03"
MAX_QUERY = 200
MAX_WORDS = 12
PAGE_SIZE = 20
MAX_PAGE = 50
# Ranking reads at most this many matches, the newest the person may see: every page that
# can be asked for is drawn from them, and a word found in every document of a large
# library costs no more than one found in a thousand.
CANDIDATES = MAX_PAGE * PAGE_SIZE
DUE_SOON = timedelta(days=30)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WORD = re.compile(r"\w+", re.UNICODE)


class ReviewDue(StrEnum):
    """The review-date filter."""

    OVERDUE = "overdue"
    SOON = "soon"  # within DUE_SOON from today, today included
    NONE = "none"  # no next review date set

    @property
    def label(self) -> str:
        return {
            ReviewDue.OVERDUE: "Review overdue",
            ReviewDue.SOON: "Review due within 30 days",
            ReviewDue.NONE: "No review date",
        }[self]


@dataclass(frozen=True, slots=True)
class Searchable:
    """What the index holds of one document."""

    title: str
    body: str
    comments: str
    next_review: date | None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """The words to find (all of them) and the filters, checked."""

    words: tuple[str, ...] = ()
    status: str = ""
    template: str = ""
    organisation_id: int | None = None
    review: ReviewDue | None = None
    page: int = 1

    @property
    def empty(self) -> bool:
        return not self.words and not self.filtered

    @property
    def filtered(self) -> bool:
        return bool(self.status or self.template or self.organisation_id is not None or self.review)

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def fts5_match(self) -> str:
        """SQLite FTS5: each word a quoted string, all required."""
        return " ".join('"' + word.replace('"', '""') + '"' for word in self.words)

    def plain_text(self) -> str:
        """PostgreSQL ``plainto_tsquery``: the words, which it ANDs."""
        return " ".join(self.words)

    def review_window(self, today: date) -> tuple[date | None, date | None]:
        """The next review dates the filter keeps, as (from, before) bounds."""
        if self.review is ReviewDue.OVERDUE:
            return None, today
        if self.review is ReviewDue.SOON:
            return today, today + DUE_SOON + timedelta(days=1)
        return None, None


def clean(text: str) -> str:
    """Text as indexed: no control characters (newlines and tabs become spaces)."""
    return _CONTROL.sub(" ", text.replace("\t", " "))


def words_of(raw: str) -> tuple[str, ...]:
    """The words of what someone typed, lowercased, in order, each once."""
    found: list[str] = []
    for word in _WORD.findall(raw[:MAX_QUERY].lower()):
        if word not in found:
            found.append(word)
    return tuple(found[:MAX_WORDS])


def parse_query(
    raw: str,
    *,
    status: str = "",
    template: str = "",
    organisation: str = "",
    review: str = "",
    page: str = "",
    statuses: Iterable[str] = (),
    templates: Iterable[str] = (),
) -> SearchQuery:
    """A query from a form or the API; an unknown filter value is a clear error."""
    if status and status not in set(statuses):
        raise InvalidInput(f"There is no status {status[:40]!r} to filter by")
    if template and template not in set(templates):
        raise InvalidInput(f"There is no template {template[:40]!r} to filter by")
    organisation_id = None
    if organisation:
        if not organisation.isdigit() or len(organisation) > 9:
            raise InvalidInput("The organisation to filter by must be one from the list")
        organisation_id = int(organisation)
    due = None
    if review:
        try:
            due = ReviewDue(review)
        except ValueError:
            raise InvalidInput(f"There is no review filter {review[:40]!r}") from None
    number = 1
    if page:
        if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
            raise InvalidInput(f"The page must be a number from 1 to {MAX_PAGE}")
        number = int(page)
    return SearchQuery(words_of(raw), status, template, organisation_id, due, number)


def searchable(
    template: Template, content: Content, title: str, comments: Iterable[str]
) -> Searchable:
    """The index's view of a document: its answers read as a person reads them."""
    lines: list[str] = []
    answers = {f"{s['id']}.{f['id']}" for s in template.sections for f in s["fields"]}
    for section in read_content(template, content):
        for view in section.fields:
            if view.empty or view.path not in answers:
                continue  # the outcome's computed values are not anyone's words
            block = view.block
            if isinstance(block, Text):
                lines.extend(block.lines)
            elif isinstance(block, Grid):
                lines.extend(" · ".join(c for c in row if c and c != "—") for row in block.rows)
            elif isinstance(block, Cards):
                for card in block.cards:
                    lines.append(card.title)
                    lines.extend(value for _label, value in card.pairs if value and value != "—")
    return Searchable(
        title=clean(title),
        body=clean("\n".join(line for line in lines if line.strip())),
        comments=clean("\n".join(text for text in comments if text.strip())),
        next_review=next_review(content),
    )


def next_review(content: Content) -> date | None:
    raw = content.get("review", {}).get("next_review")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        return None  # a date typed that is not one: no review date to filter by


def comment_texts(comments: Mapping[str, Any]) -> list[str]:
    """Each comment's text and its replies', from the document's ``comments`` map as plain
    dicts (``{"text", "replies": [{"text"}]}``)."""
    texts = []
    for comment in comments.values():
        if not isinstance(comment, Mapping):
            continue
        texts.append(str(comment.get("text") or ""))
        for reply in comment.get("replies") or []:
            if isinstance(reply, Mapping):
                texts.append(str(reply.get("text") or ""))
    return texts


def passage(marked: str) -> tuple[tuple[str, bool], ...]:
    """A highlighted passage from the database as (text, is a match) runs, for a template
    to escape run by run: what a document says is never markup."""
    runs: list[tuple[str, bool]] = []
    rest = " ".join(marked.split())
    while rest:
        start = rest.find(HIT_START)
        if start < 0:
            runs.append((rest.replace(HIT_END, ""), False))
            break
        if start:
            runs.append((rest[:start].replace(HIT_END, ""), False))
        end = rest.find(HIT_END, start + 1)
        end = len(rest) if end < 0 else end
        runs.append((rest[start + 1 : end].replace(HIT_START, ""), True))
        rest = rest[end + 1 :]
    return tuple((text, hit) for text, hit in runs if text)


def has_hit(marked: str | None) -> bool:
    return bool(marked) and HIT_START in (marked or "")
