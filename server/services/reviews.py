"""Review cycles (issue 17; docs/reviews.md): reminders before a document's review date,
the organisation DPO's daily list of overdue reviews, raised triggers and started reviews.

Each reminder (document, review date, days before) is a row of ``review_reminders``,
inserted in the transaction that writes its notifications: a reminder is sent once, and
only once, whichever process looks and however often it restarts (a second writer's
insert fails on the primary key and its transaction, notifications included, is rolled
back). The time is the injected clock's (``Settings.clock``), never read here directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.errors import AccessDenied, DomainError, InvalidInput
from server.domain.parties import Capacity, parse_capacities
from server.domain.reviews import (
    DATE_REASON,
    SCHEDULED,
    TRIGGERABLE,
    ReviewCycle,
    Trigger,
    due_date,
    is_overdue,
    reminders_due,
    review_cycle_of,
    schedule_answers,
    start_review_policy,
)
from server.domain.tasks import stop_if_cancelled
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.notifications import NotificationService
from server.services.outbox import enqueue_text
from server.services.template_library import TemplateLibrary
from server.storage.database import writer_turn
from server.storage.models import (
    AuditEvent,
    Dpia,
    Membership,
    OverdueReviewDigest,
    Participant,
    ReviewAnswers,
    ReviewReminder,
    User,
)

log = logging.getLogger("opendpia.reviews")
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A document's review schedule as it stands."""

    dpia_id: str
    title: str
    status: DpiaStatus
    cycle: ReviewCycle | None
    due: date | None

    def overdue(self, today: date) -> bool:
        return self.status in SCHEDULED and is_overdue(self.due, today)


@dataclass(frozen=True, slots=True)
class Supersession:
    """What replaced a superseded document: its successor, the day, and the version in
    force now (the successor, a later version, or None)."""

    successor: str
    on: date
    in_force: str | None


@dataclass(frozen=True, slots=True)
class RaisedTrigger:
    """A trigger raised on a document, as its audit chain records it."""

    trigger: str  # its label
    what: str
    by: str  # the name of who raised it
    channel: str
    at: datetime


class ReviewService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dpias: DpiaService,
        history: HistoryService,
        audit: AuditTrail,
        notifications: NotificationService,
        *,
        offsets: tuple[int, ...],
        clock: Clock,
        base_url: str,
        mail_from: str,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._templates = TemplateLibrary(sessions)
        self._dpias = dpias
        self._history = history
        self._audit = audit
        self._notifications = notifications
        self.offsets = offsets
        self.clock = clock
        self._base = base_url.rstrip("/")
        self._mail_from = mail_from
        self._domain = urlsplit(self._base).hostname or "opendpia.localhost"
        self._on_queued = on_queued
        # Per document: the log position and template its review answers were read at, and
        # those answers. A pass over thousands of approved documents reads again only those
        # whose log moved (reading a document whole costs milliseconds; its position, none).
        # Kept in ``review_answers`` too, so that a process starting up reads only what moved.
        self._answers: dict[str, tuple[tuple[int, str, int], dict[str, Any]]] = {}
        self._unsaved: set[str] = set()

    # -- schedules -------------------------------------------------------------------

    async def schedule(self, dpia_id: str) -> Schedule:
        async with self._sessions() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            return await self._schedule(session, dpia)

    async def _schedule(
        self, session: AsyncSession, dpia: Dpia, seq: int | None = None
    ) -> Schedule:
        """``seq``: how far the document's log has reached, when the caller knows (then
        answers read at that position are not read again)."""
        status = DpiaStatus(dpia.status)
        cycle = review_cycle_of(
            (await self._templates.template(dpia.template_id, dpia.template_version)).content
        )
        due = None
        if cycle is not None:
            answers = await self._review_answers(dpia, cycle, seq)
            approved_on = (
                await _approved_on(session, dpia.id) if cycle.frequency_field is not None else None
            )
            due = due_date(cycle, answers, approved_on)
        return Schedule(dpia.id, dpia.title, status, cycle, due)

    async def _review_answers(
        self, dpia: Dpia, cycle: ReviewCycle, seq: int | None
    ) -> dict[str, Any]:
        read_at = (seq, dpia.template_id, dpia.template_version) if seq is not None else None
        kept = self._answers.get(dpia.id)
        if read_at is not None and kept is not None and kept[0] == read_at:
            return kept[1]
        try:
            version = await self._history.current(dpia.id)
        except DomainError:
            return {}  # no stored content yet: no date
        answers = schedule_answers(cycle, version.content)
        self._answers[dpia.id] = ((version.seq, dpia.template_id, dpia.template_version), answers)
        self._unsaved.add(dpia.id)
        return answers

    async def _recall(self, dpia_ids: list[str]) -> None:
        """Answers kept by an earlier pass (of any process) for documents not in memory."""
        missing = [dpia_id for dpia_id in dpia_ids if dpia_id not in self._answers]
        async with self._sessions() as session:
            for start in range(0, len(missing), 500):
                rows = await session.scalars(
                    select(ReviewAnswers).where(
                        ReviewAnswers.dpia_id.in_(missing[start : start + 500])
                    )
                )
                for row in rows:
                    read_at = (row.read_seq, row.template_id, row.template_version)
                    self._answers[row.dpia_id] = (read_at, json.loads(row.answers))

    async def _save_answers(self) -> None:
        """Keep the answers read in this pass; another process keeping the same at the same
        time is no loss (either reading will do), so a clash is ignored."""
        ids, self._unsaved = sorted(self._unsaved), set()
        for start in range(0, len(ids), 500):
            batch = [i for i in ids[start : start + 500] if i in self._answers]
            rows = [
                {
                    "dpia_id": dpia_id,
                    "read_seq": self._answers[dpia_id][0][0],
                    "template_id": self._answers[dpia_id][0][1],
                    "template_version": self._answers[dpia_id][0][2],
                    "answers": json.dumps(self._answers[dpia_id][1], sort_keys=True),
                }
                for dpia_id in batch
            ]
            try:
                async with writer_turn(self._sessions), self._sessions.begin() as session:
                    await session.execute(
                        delete(ReviewAnswers).where(ReviewAnswers.dpia_id.in_(batch))
                    )
                    await session.execute(insert(ReviewAnswers), rows)
            except IntegrityError:
                log.info("review answers kept by another process meanwhile")

    async def scheduled(self, *where: object) -> list[Schedule]:
        """The schedules of approved documents (optionally narrowed by ``where``)."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Dpia)
                    .where(Dpia.status.in_([s.value for s in SCHEDULED]), *where)  # type: ignore[arg-type]
                    .order_by(Dpia.id)
                )
            ).all()
            seqs = await self._history.last_seqs([dpia.id for dpia in rows])
            await self._recall([dpia.id for dpia in rows])
            schedules = [await self._schedule(session, dpia, seqs.get(dpia.id)) for dpia in rows]
        if self._unsaved:
            await self._save_answers()
        return schedules

    # -- reminders ---------------------------------------------------------------------

    async def send_due(self) -> int:
        """Remind the owners and DPOs of every approved document whose review date is
        ``offsets`` days away or nearer, once per offset; then the organisation DPOs'
        daily lists of overdue reviews. How many reminders and lists went out."""
        today = self.clock().date()
        sent = 0
        schedules = await self.scheduled()
        for schedule in schedules:
            if schedule.due is None:
                continue
            try:
                sent += await self._remind(schedule, today)
            except IntegrityError:
                continue  # another process sent it meanwhile: once is enough
        sent += await self._overdue_digests([s for s in schedules if s.overdue(today)], today)
        return sent

    async def _remind(self, schedule: Schedule, today: date) -> int:
        assert schedule.due is not None
        async with self._sessions() as session:
            done = set(
                (
                    await session.scalars(
                        select(ReviewReminder.days_before).where(
                            ReviewReminder.dpia_id == schedule.dpia_id,
                            ReviewReminder.due == schedule.due,
                        )
                    )
                ).all()
            )
        due_now = reminders_due(schedule.due, today, self.offsets, done)
        if not due_now:
            return 0
        nearest = min(due_now)
        now = self.clock()
        days = (schedule.due - today).days
        when = schedule.due.strftime("%d %B %Y").lstrip("0")
        async with self._sessions.begin() as session:
            for days_before in due_now:
                session.add(
                    ReviewReminder(
                        dpia_id=schedule.dpia_id,
                        due=schedule.due,
                        days_before=days_before,
                        sent_at=now,
                        emailed=days_before == nearest,
                    )
                )
            await session.flush()  # the primary key decides who sends, before any mail
            dpia = await session.get_one(Dpia, schedule.dpia_id)
            told = await self._notifications.notify_roles(
                session,
                dpia,
                (Role.OWNER, Role.DPO),
                kind="review",
                section=_section_of(schedule.cycle),
                actor_name="OpenDPIA",
                channel="system",
                excerpt=wording.review_due_excerpt(when, days),
                what=wording.review_due_what(when, days),
            )
        self._notifications.announce(told)
        return 1

    async def _overdue_digests(self, overdue: list[Schedule], today: date) -> int:
        """One email a day to each DPO of an organisation leading overdue reviews."""
        if not overdue:
            return 0
        by_address: dict[str, tuple[str, list[Schedule]]] = {}
        async with self._sessions() as session:
            for schedule in overdue:
                for address, name in await self._dpos_for(session, schedule.dpia_id):
                    by_address.setdefault(address, (name, []))[1].append(schedule)
        sent = 0
        for address, (name, schedules) in sorted(by_address.items()):
            try:
                async with self._sessions.begin() as session:
                    if await session.get(OverdueReviewDigest, (address, today)) is not None:
                        continue
                    session.add(
                        OverdueReviewDigest(
                            address=address,
                            day=today,
                            sent_at=self.clock(),
                            documents=len(schedules),
                        )
                    )
                    await session.flush()
                    self._queue_digest(session, address, name, schedules, today)
                sent += 1
            except IntegrityError:
                continue  # another process wrote today's list
        if sent:
            self._on_queued()
        return sent

    async def _dpos_for(self, session: AsyncSession, dpia_id: str) -> list[tuple[str, str]]:
        """The DPOs of the document's lead organisation (members signing as DPO); if it
        names none, the document's own DPOs."""
        dpia = await session.get_one(Dpia, dpia_id)
        rows = await session.execute(
            select(User.email, User.name, Membership.signatory_roles)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == dpia.lead_organisation_id, User.active.is_(True))
        )
        found = [(e, n) for e, n, raw in rows if Capacity.DPO in parse_capacities(raw)]
        if found:
            return found
        participants = await session.execute(
            select(Participant.email, Participant.name).where(
                Participant.dpia_id == dpia_id, Participant.role == Role.DPO.value
            )
        )
        return [(e, n) for e, n in participants]

    def _queue_digest(
        self, session: AsyncSession, address: str, name: str, schedules: list[Schedule], today: date
    ) -> None:
        lines = [
            f"- {s.dpia_id}: {s.title} (review was due {s.due:%d %B %Y}) "
            f"{self._base}/dpias/{s.dpia_id}/review"
            for s in sorted(schedules, key=lambda s: s.due or today)
        ]
        plural = "s" if len(schedules) != 1 else ""
        text = (
            f"Dear {name},\n\n{len(schedules)} approved document{plural} of your organisation "
            f"{'are' if plural else 'is'} overdue for review on {today:%d %B %Y}:\n\n"
            + "\n".join(lines)
            + "\n\nStart a review from each document's review page.\n"
        )
        enqueue_text(
            session,
            mail_from=self._mail_from,
            domain=self._domain,
            kind="overdue",
            recipient=address,
            recipient_name=name,
            subject=f"Overdue reviews: {len(schedules)} document{plural}",
            text=text,
            dpia_id=schedules[0].dpia_id,
        )

    async def run(self, started: asyncio.Event, every_seconds: float) -> None:
        """Send what is due every ``every_seconds`` until cancelled."""
        started.set()
        while True:
            stop_if_cancelled()
            try:
                await self.send_due()
            except Exception:
                log.exception("sending review reminders failed; trying again later")
            await asyncio.sleep(every_seconds)

    # -- triggers and reviews -----------------------------------------------------------

    async def record_trigger(
        self,
        dpia_id: str,
        trigger: Trigger,
        what: str,
        *,
        actor: str,
        actor_name: str,
        channel: str,
    ) -> None:
        """A raised trigger: chained in the document's history (who, when, which channel,
        what changed) and told to its owners and DPOs."""
        async with self._sessions.begin() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            await self._audit.append(
                session,
                dpia_id,
                "review_trigger",
                actor=actor,
                channel=channel,
                data={
                    "summary": wording.trigger_raised(trigger.label, what),
                    "trigger": trigger.id,
                    "label": trigger.label,
                    "what": what,
                    "by": actor_name,
                },
            )
            template = await self._templates.template(dpia.template_id, dpia.template_version)
            told = await self._notifications.notify_roles(
                session,
                dpia,
                (Role.OWNER, Role.DPO),
                kind="trigger",
                section=_section_of(review_cycle_of(template.content)),
                actor_name=actor_name,
                channel=channel,
                excerpt=f"{trigger.label}: {what}"[:200],
                what=wording.trigger_what(trigger.label),
                actor=actor,
            )
        self._notifications.announce(told)

    async def triggers(self, dpia_id: str) -> list[RaisedTrigger]:
        """Every trigger raised on the document, newest first."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.dpia_id == dpia_id, AuditEvent.kind == "review_trigger")
                    .order_by(AuditEvent.position.desc())
                )
            ).all()
        raised = []
        for row in rows:
            data = json.loads(row.data)
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=self.clock().tzinfo)
            raised.append(
                RaisedTrigger(
                    data.get("label", ""), data.get("what", ""), data.get("by", ""), row.channel, at
                )
            )
        return raised

    async def start(self, user: CurrentUser, dpia_id: str, role: Role, reason: str) -> str:
        """Start a review of an approved document: it becomes "under review" (still the
        record in force: locked, its sign-offs and exports as they were) and a new version
        opens with its content, recording why (its date or a named trigger). The new
        version's approval supersedes it (``WorkflowService``). The new version's id."""
        schedule = await self.schedule(dpia_id)
        start_review_policy(role, schedule.status)
        if reason == DATE_REASON:
            why = wording.REVIEW_BECAUSE_DATE + (
                f", {schedule.due:%d %B %Y}" if schedule.due is not None else ""
            )
        elif schedule.cycle is not None:
            why = schedule.cycle.trigger(reason).label
        else:
            raise InvalidInput("This kind of document has no review triggers: review it by date")
        async with self._sessions() as session:
            lead = (await session.get_one(Dpia, dpia_id)).lead_organisation_id
        if lead not in user.organisation_ids:
            raise AccessDenied(
                "The new version is led by this document's lead organisation: a member of it "
                "starts the review"
            )
        actor = f"user:{user.id}"
        async with self._sessions.begin() as session:
            dpia = (
                await session.execute(select(Dpia).where(Dpia.id == dpia_id).with_for_update())
            ).scalar_one()
            if DpiaStatus(dpia.status) is not schedule.status:
                raise InvalidInput("The document moved meanwhile; reload and try again")
            dpia.status = DpiaStatus.UNDER_REVIEW.value
            await self._audit.append(
                session,
                dpia_id,
                "status",
                actor=actor,
                data={
                    "summary": f"{schedule.status.label} → {DpiaStatus.UNDER_REVIEW.label}. {why}",
                    "from": schedule.status.value,
                    "to": DpiaStatus.UNDER_REVIEW.value,
                    "reasons": why,
                },
            )
        new_id = await self._dpias.copy_unchecked(user, dpia_id, lead)
        async with self._sessions.begin() as session:
            for document, summary in (
                (dpia_id, wording.review_started(why, new_id)),
                (new_id, wording.review_of(why, dpia_id)),
            ):
                await self._audit.append(
                    session,
                    document,
                    "review_started",
                    actor=actor,
                    data={
                        "summary": summary,
                        "reason": reason,
                        "why": why,
                        "old": dpia_id,
                        "new": new_id,
                    },
                )
        await self._notifications.record_status_change(
            dpia_id,
            old=schedule.status.value,
            new=DpiaStatus.UNDER_REVIEW.value,
            actor=actor,
            reason=f"{why}; new version {new_id}",
        )
        return new_id

    async def successor(self, dpia_id: str) -> str | None:
        """The version opened by a review of this document that is still open, if any."""
        async with self._sessions() as session:
            return await session.scalar(
                select(Dpia.id)
                .where(
                    Dpia.origin_id == dpia_id,
                    Dpia.status.notin_(
                        [
                            DpiaStatus.ABANDONED.value,
                            DpiaStatus.REJECTED.value,
                            DpiaStatus.ARCHIVED.value,
                        ]
                    ),
                )
                .order_by(Dpia.created_at.desc())
                .limit(1)
            )

    async def superseded_by(self, dpia_id: str) -> Supersession | None:
        """For a superseded document: the version whose approval superseded it, when, and
        the version in force now (that one, or a later version that superseded it in turn;
        None if none of them is standing any more)."""
        async with self._sessions() as session:
            found = await _superseding(session, dpia_id)
            if found is None:
                return None
            successor, at = found
            current: str | None = successor
            for _ in range(100):  # a chain of reviews; bounded against a loop made by hand
                row = await session.get(Dpia, current)
                if row is None or DpiaStatus(row.status) is not DpiaStatus.SUPERSEDED:
                    if row is None or DpiaStatus(row.status) not in TRIGGERABLE:
                        current = None  # closed (archived, abandoned) or gone: none in force
                    break
                later = await _superseding(session, row.id)
                current = later[0] if later is not None else None
                if current is None:
                    break
        return Supersession(successor, at.date(), current)

    async def in_force_version(self, dpia_id: str) -> str | None:
        """While this document is a review's new version: the approved one still in force."""
        async with self._sessions() as session:
            dpia = await session.get_one(Dpia, dpia_id)
            if dpia.origin_id is None:
                return None
            origin = await session.get(Dpia, dpia.origin_id)
            if origin is None or origin.status != DpiaStatus.UNDER_REVIEW.value:
                return None
            return origin.id


def _section_of(cycle: ReviewCycle | None) -> str:
    return cycle.date_field.partition(".")[0] if cycle is not None else "review"


async def _status_changes(
    session: AsyncSession, dpia_id: str
) -> list[tuple[datetime, dict[str, Any]]]:
    """The document's status changes in its audit chain, newest first (each event's time
    and data; an unreadable one is skipped)."""
    rows = await session.execute(
        select(AuditEvent.at, AuditEvent.data)
        .where(AuditEvent.dpia_id == dpia_id, AuditEvent.kind == "status")
        .order_by(AuditEvent.position.desc())
    )
    changes = []
    for at, raw in rows:
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            changes.append((at, data))
    return changes


async def _superseding(session: AsyncSession, dpia_id: str) -> tuple[str, datetime] | None:
    """The version whose approval superseded the document, and when (its audit chain)."""
    for at, data in await _status_changes(session, dpia_id):
        if data.get("to") == DpiaStatus.SUPERSEDED.value and data.get("successor"):
            return str(data["successor"]), at
    return None


async def _approved_on(session: AsyncSession, dpia_id: str) -> date | None:
    """The day the document was last approved (its audit chain's status change)."""
    approved = (DpiaStatus.APPROVED.value, DpiaStatus.APPROVED_WITH_CONDITIONS.value)
    for at, data in await _status_changes(session, dpia_id):
        if data.get("to") in approved:
            return at.date()
    return None
