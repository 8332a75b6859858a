"""Review cycles (issue 17): when an approved document is due for review, which events
trigger one early, and how an emailed "this has changed: …" names a trigger.

A template says where its schedule lives and which triggers it knows, in its
``review_cycle``::

    "review_cycle": {
        "date": "review.next_review",        # a date field: the next review date
        "frequency": "review.frequency",     # optional choice field: "6-months", …
        "triggers": [{"id": "new-data", "label": "New data"}, …]
    }

Pure rules, no I/O: the services read the content, the clock and the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, InvalidInput

# Statuses in which a document is the approved record that a review keeps up to date.
SCHEDULED = frozenset(
    {DpiaStatus.APPROVED, DpiaStatus.APPROVED_WITH_CONDITIONS, DpiaStatus.IN_FORCE}
)
# A trigger is raised about the approved record, also while its review is under way.
TRIGGERABLE = SCHEDULED | {DpiaStatus.UNDER_REVIEW}
# Who may start a review: the document's owners and DPOs.
STARTERS = frozenset({Role.OWNER, Role.DPO})
MAX_WHAT_CHANGED = 2000
DATE_REASON = "date"  # a review started because its date came, not because of a trigger

_ID = re.compile(r"^[a-z][a-z0-9-]*$")
_MONTHS = re.compile(r"^(\d{1,2})-months?$")


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class ReviewCycle:
    """Where a template keeps a document's review schedule, and its triggers."""

    date_field: str  # "section.field"
    frequency_field: str | None
    triggers: tuple[Trigger, ...]

    def trigger(self, trigger_id: str) -> Trigger:
        for trigger in self.triggers:
            if trigger.id == trigger_id:
                return trigger
        raise InvalidInput(
            "Choose one of the review triggers: " + ", ".join(t.label for t in self.triggers)
        )


def check_review_cycle(
    content: Mapping[str, Any], fields: Mapping[str, str], fail: Callable[[str, str], Exception]
) -> None:
    """Raise ``fail(where, problem)`` unless the template's ``review_cycle`` (if any) names a
    date field and a choice field of the template and lists triggers with unique ids and
    labels. ``fields`` maps "section.field" to its kind."""
    cycle = content.get("review_cycle")
    if cycle is None:
        return
    where = "review_cycle"
    if not isinstance(cycle, dict):
        raise fail(where, "it must be an object")
    if fields.get(str(cycle.get("date"))) != "date":
        raise fail(where, f"date {cycle.get('date')!r} must name a date field (section.field)")
    frequency = cycle.get("frequency")
    if frequency is not None and fields.get(str(frequency)) != "choice":
        raise fail(where, f"frequency {frequency!r} must name a choice field (section.field)")
    triggers = cycle.get("triggers")
    if not isinstance(triggers, list) or not triggers:
        raise fail(where, "it needs a list of triggers")
    seen: set[str] = set()
    for trigger in triggers:
        tid = trigger.get("id") if isinstance(trigger, dict) else None
        if not isinstance(tid, str) or not _ID.match(tid) or tid == DATE_REASON:
            raise fail(where, f"trigger id {tid!r} must be lower case letters, digits and -")
        if tid in seen:
            raise fail(where, f"trigger {tid!r} is listed twice")
        seen.add(tid)
        if not isinstance(trigger.get("label"), str) or not trigger["label"].strip():
            raise fail(where, f"trigger {tid!r} has no label")


def review_cycle_of(content: Mapping[str, Any]) -> ReviewCycle | None:
    """A checked template's review cycle, or None if it has none."""
    cycle = content.get("review_cycle")
    if not isinstance(cycle, dict):
        return None
    return ReviewCycle(
        cycle["date"],
        cycle.get("frequency"),
        tuple(Trigger(t["id"], t["label"]) for t in cycle["triggers"]),
    )


def _value(content: Mapping[str, Any], dotted: str) -> Any:
    section, _, field = dotted.partition(".")
    values = content.get(section)
    return values.get(field) if isinstance(values, Mapping) else None


def schedule_answers(cycle: ReviewCycle, content: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a document's content its review date is read from (``due_date`` reads
    these as it reads the whole content)."""
    answers: dict[str, dict[str, Any]] = {}
    for dotted in (cycle.date_field, cycle.frequency_field):
        if dotted is not None:
            section, _, field = dotted.partition(".")
            answers.setdefault(section, {})[field] = _value(content, dotted)
    return answers


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it has no such day)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def due_date(
    cycle: ReviewCycle, content: Mapping[str, Any], approved_on: date | None
) -> date | None:
    """When the document is next due for review: its date field if it holds a date; else
    its frequency counted from the day it was approved; else None (no schedule)."""
    raw = _value(content, cycle.date_field)
    if isinstance(raw, str) and raw:
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            pass  # not a date: fall back on the frequency
    if cycle.frequency_field is None or approved_on is None:
        return None
    frequency = _value(content, cycle.frequency_field)
    match = _MONTHS.match(frequency) if isinstance(frequency, str) else None
    return add_months(approved_on, int(match.group(1))) if match else None


def reminders_due(due: date, today: date, offsets: Sequence[int], sent: set[int]) -> list[int]:
    """The offsets (days before ``due``) whose reminder is due today and not yet sent. Only
    the nearest is worth an email; the caller records the others as covered by it."""
    return [d for d in offsets if d not in sent and due - timedelta(days=d) <= today < due]


def is_overdue(due: date | None, today: date) -> bool:
    return due is not None and due < today


def check_trigger_report(
    cycle: ReviewCycle | None, status: DpiaStatus, trigger_id: str, what: str
) -> tuple[Trigger, str]:
    """A raised trigger, if the document has triggers and is the approved record; the
    trigger and what changed (cleaned), or InvalidInput saying why not."""
    if cycle is None:
        raise InvalidInput("This kind of document has no review triggers")
    if status not in TRIGGERABLE:
        raise InvalidInput(
            "Review triggers are raised on an approved document; this one is "
            f"{status.label.lower()}, and its content can still change"
        )
    what = " ".join(what.split())
    if len(what) > MAX_WHAT_CHANGED:
        raise InvalidInput(f"Say what changed in at most {MAX_WHAT_CHANGED} characters")
    return cycle.trigger(trigger_id.strip()), what


def start_review_policy(role: Role, status: DpiaStatus) -> None:
    """Starting a review: an owner or a DPO, on an approved record not under review."""
    if role not in STARTERS:
        raise AccessDenied("Only the document's owners and DPOs can start a review")
    if status is DpiaStatus.UNDER_REVIEW:
        raise InvalidInput("A review of this document is under way already: see its new version")
    if status not in SCHEDULED:
        raise InvalidInput(
            f"Only an approved document is reviewed; this one is {status.label.lower()}"
        )


# -- email: "this has changed: …" ----------------------------------------------------------

_CHANGED = re.compile(
    r"^\s*(?:review\s+trigger|this\s+has\s+changed|something\s+has\s+changed|"
    r"(?:there\s+(?:is|has\s+been)\s+)?a\s+change)\s*[:\-\u2013\u2014]\s*",
    re.IGNORECASE,
)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def trigger_in_reply(cycle: ReviewCycle | None, text: str) -> tuple[Trigger, str] | None:
    """The trigger an emailed reply raises, and what changed, or None for an ordinary
    reply. A reply raises one when its first line starts with a trigger's label or id and a
    colon ("A data breach: …"), or when it starts "This has changed: …" (or "Review
    trigger:", "A change:"): then the trigger whose label or id its first line names, else
    the template's "other" trigger (else its first): nothing else is guessed."""
    if cycle is None:
        return None
    stripped = text.strip()
    first_line = stripped.splitlines()[0] if stripped else ""
    head, colon, rest = first_line.partition(":")
    if colon:
        named = _named(cycle, head)
        if named is not None:
            remainder = (rest + stripped[len(first_line) :]).strip()
            return named, " ".join(remainder.split())[:MAX_WHAT_CHANGED]
    match = _CHANGED.match(stripped)
    if match is None:
        return None
    remainder = stripped[match.end() :].strip()
    words = f" {_words(remainder.splitlines()[0] if remainder else '')} "
    chosen = next(
        (
            t
            for t in cycle.triggers
            if t.id != "other" and (f" {_words(t.label)} " in words or f" {_words(t.id)} " in words)
        ),
        None,
    ) or _fallback(cycle)
    return chosen, " ".join(remainder.split())[:MAX_WHAT_CHANGED]


def _named(cycle: ReviewCycle, head: str) -> Trigger | None:
    words = _words(head)
    if not words:
        return None
    for trigger in cycle.triggers:
        if words in (_words(trigger.label), _words(trigger.id)):
            return trigger
    return None


def _fallback(cycle: ReviewCycle) -> Trigger:
    other = [t for t in cycle.triggers if t.id == "other"]
    return other[0] if other else cycle.triggers[0]
