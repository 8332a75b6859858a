"""The projects dashboard: projects by step, what waits for a person, what is overdue.

Everything here is read for one signed-in user and only from the documents they take part
in: a project they have no document of stays invisible (docs/projects.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.access import Role
from server.domain.dpias import DpiaStatus
from server.domain.workflow import IgStep, SectionState
from server.services.accounts import CurrentUser
from server.services.projects import ProjectService, ProjectSummary
from server.services.reviews import ReviewService
from server.services.template_library import TemplateLibrary
from server.storage.models import AuditEvent, Dpia, Participant, SectionReviewer
from server.storage.models import SectionState as SectionStateRow

# A DPIA sent for approval is overdue when no one decided for this long.
APPROVAL_OVERDUE_AFTER = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Waiting:
    """One thing that waits for the person: a document to look at, and why."""

    document_id: str
    title: str
    what: str  # "dpo_review" or "section"
    section_title: str = ""


@dataclass(frozen=True, slots=True)
class Overdue:
    document_id: str
    title: str
    since: date  # the review date that passed, or the day it was sent for approval


@dataclass(frozen=True, slots=True)
class DashboardView:
    counts: dict[IgStep, int]  # every step, 0 included, over all the person's projects
    projects: list[ProjectSummary]  # filtered by the step asked for
    waiting: list[Waiting]
    overdue_reviews: list[Overdue]
    overdue_approvals: list[Overdue]


class Dashboard:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        projects: ProjectService,
        reviews: ReviewService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._projects = projects
        self._reviews = reviews
        self._clock = clock

    async def for_user(
        self, user: CurrentUser, *, step: str = "", now: datetime | None = None
    ) -> DashboardView:
        now = now or self._clock()
        every = await self._projects.list_for(user)
        counts = dict.fromkeys(IgStep, 0)
        for project in every:
            counts[project.step] += 1
        shown = every if not step else [p for p in every if p.step.value == step]
        async with self._sessions() as session:
            waiting = await self._waiting(session, user)
            # Signatures waiting for the person are the party sign-offs' to say
            # (``PartySignOffService.outstanding_for``); the page asks it beside this.
            approvals = await self._overdue_approvals(session, user, now)
        return DashboardView(
            counts, shown, waiting, await self._overdue_reviews(user, now.date()), approvals
        )

    async def _waiting(self, session: AsyncSession, user: CurrentUser) -> list[Waiting]:
        """Documents in DPO review where the person is the DPO, and sections submitted for
        review that an owner asked them to review. (Signatures outstanding per party
        come from ``PartySignOffService.outstanding_for``.)"""
        dpo = await session.execute(
            select(Dpia.id, Dpia.title)
            .join(Participant, Participant.dpia_id == Dpia.id)
            .where(
                Participant.user_id == user.id,
                Participant.role == Role.DPO.value,
                Dpia.status == DpiaStatus.DPO_REVIEW.value,
            )
            .order_by(Dpia.id)
        )
        found = [Waiting(d, title, "dpo_review") for d, title in dpo]
        sections = await session.execute(
            select(
                Dpia.id,
                Dpia.title,
                Dpia.template_id,
                Dpia.template_version,
                SectionReviewer.section,
            )
            .join(Participant, Participant.dpia_id == Dpia.id)
            .join(SectionReviewer, SectionReviewer.participant_id == Participant.id)
            .join(
                SectionStateRow,
                (SectionStateRow.dpia_id == Dpia.id)
                & (SectionStateRow.section == SectionReviewer.section),
            )
            .where(
                Participant.user_id == user.id,
                SectionStateRow.state == SectionState.SUBMITTED.value,
            )
            .order_by(Dpia.id, SectionReviewer.section)
        )
        library = TemplateLibrary(self._sessions)
        for d, title, template_id, version, section in sections:
            template = await library.template(template_id, version)
            found.append(
                Waiting(d, title, "section", wording.section_title(template.sections, section))
            )
        return found

    async def _overdue_approvals(
        self, session: AsyncSession, user: CurrentUser, now: datetime
    ) -> list[Overdue]:
        sent = (
            select(AuditEvent.dpia_id, func.max(AuditEvent.at).label("at"))
            .where(AuditEvent.kind == "status")
            .group_by(AuditEvent.dpia_id)
            .subquery()
        )
        rows = await session.execute(
            select(Dpia.id, Dpia.title, sent.c.at)
            .join(Participant, Participant.dpia_id == Dpia.id)
            .join(sent, sent.c.dpia_id == Dpia.id)
            .where(
                Participant.user_id == user.id,
                Dpia.status == DpiaStatus.AWAITING_APPROVAL.value,
            )
            .order_by(sent.c.at)
        )
        overdue = []
        for document_id, title, at in rows:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite forgets the zone
            if now - at > APPROVAL_OVERDUE_AFTER:
                overdue.append(Overdue(document_id, title, at.date()))
        return overdue

    async def _overdue_reviews(self, user: CurrentUser, today: date) -> list[Overdue]:
        """The person's approved documents (DPIAs and ISAs, approved or in force, and not
        yet under review) whose review date, by their template's review cycle, has passed.
        A draft's date is not due yet, a document under review is being reviewed, and a
        closed one is no longer the record: none of them is overdue."""
        mine = select(Participant.dpia_id).where(Participant.user_id == user.id)
        schedules = await self._reviews.scheduled(Dpia.id.in_(mine))
        overdue = [
            Overdue(s.dpia_id, s.title, s.due)
            for s in schedules
            if s.due is not None and s.overdue(today)
        ]
        return sorted(overdue, key=lambda o: o.since)
