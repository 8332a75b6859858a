"""Endorsed agreements and adopting one (issue 16; docs/projects.md, "Adopting an endorsed
agreement").

An ISA whose reviewing body's endorsement stands (valid over today's content) is listed for
every signed-in person. Adopting makes a new project led by the adopter's organisation, with
the original's other parties and copies of its DPIA's and ISA's content (as
``DpiaService.clone`` copies: content, not discussion), and keeps where it came from
(``projects.adopted_from``, ``projects.endorsement_origin``). What the adopted ISA changed
from the endorsed text is computed, never stored: the original rebuilt at the endorsed seq,
compared field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain import wording
from server.domain.content import WHOLE, target_hash
from server.domain.errors import DocumentNotFound, InvalidInput
from server.domain.projects import DocumentKind
from server.domain.workflow import IgStep, SignOffKind, SignOffState
from server.services.accounts import CurrentUser
from server.services.dpias import DpiaService
from server.services.history import FieldChange, HistoryService, field_changes
from server.services.projects import ProjectService
from server.storage.models import Dpia, Organisation, Project, ProjectParty, SignOffRow
from server.storage.updates import SqlUpdateStore

# The documents an adopted project copies: the DPIA and the ISA.
COPIED_KINDS = (DocumentKind.DPIA, DocumentKind.ISA)


@dataclass(frozen=True, slots=True)
class EndorsedAgreement:
    """An ISA whose reviewing body's endorsement stands: the library's entry."""

    project_id: str
    title: str
    isa_id: str
    lead_organisation: str
    reviewing_body: str
    signoff_id: int
    endorsed_at: datetime
    parties: list[str]


class AdoptionService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        dpias: DpiaService,
        projects: ProjectService,
        history: HistoryService,
        store: SqlUpdateStore,
    ) -> None:
        self._sessions = sessions
        self._dpias = dpias
        self._projects = projects
        self._history = history
        self._store = store

    async def endorsed(self) -> list[EndorsedAgreement]:
        """Every ISA whose endorsement stands (valid over today's content), for every
        signed-in person: an endorsed agreement is meant to be reused (decision)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(SignOffRow, Dpia, Project, Organisation.name)
                    .join(Dpia, Dpia.id == SignOffRow.dpia_id)
                    .join(Project, Project.id == Dpia.project_id)
                    .join(Organisation, Organisation.id == Project.lead_organisation_id)
                    .where(
                        SignOffRow.kind == SignOffKind.ENDORSEMENT.value,
                        SignOffRow.decision == "endorse",
                        SignOffRow.state == SignOffState.VALID.value,
                        Dpia.kind == DocumentKind.ISA.value,
                    )
                    .order_by(SignOffRow.created_at.desc(), SignOffRow.id.desc())
                )
            ).all()
            names: dict[str, list[str]] = {}
            for project_id in {project.id for _, _, project, _ in rows}:
                names[project_id] = list(
                    await session.scalars(
                        select(ProjectParty.name)
                        .where(ProjectParty.project_id == project_id)
                        .order_by(ProjectParty.id)
                    )
                )
        found: list[EndorsedAgreement] = []
        seen: set[str] = set()
        for row, dpia, project, lead in rows:
            if dpia.id in seen or not await self._still_endorsed(row):
                continue
            seen.add(dpia.id)
            found.append(
                EndorsedAgreement(
                    project.id,
                    project.title,
                    dpia.id,
                    lead,
                    row.party,
                    row.id,
                    _aware(row.created_at),
                    names.get(project.id, []),
                )
            )
        return found

    async def _still_endorsed(self, row: SignOffRow) -> bool:
        template = await self._history.template_of(row.dpia_id)
        current = await self._history.current(row.dpia_id)
        return target_hash(template, current.content, WHOLE) == row.content_hash

    async def adopt(self, user: CurrentUser, project_id: str, organisation_id: int) -> str:
        """A new project led by ``organisation_id`` (one of the adopter's), with copies of
        the endorsed project's DPIA and ISA (content, not discussion), its other parties,
        and where it came from. The new project's id."""
        if organisation_id not in user.organisation_ids:
            raise InvalidInput("The adopting organisation must be one of your organisations")
        endorsement = next((e for e in await self.endorsed() if e.project_id == project_id), None)
        if endorsement is None:
            raise InvalidInput(wording.NOT_ENDORSED)
        async with self._sessions() as session:
            source = await session.get_one(Project, project_id)
            parties = list(
                await session.scalars(
                    select(ProjectParty)
                    .where(ProjectParty.project_id == project_id)
                    .order_by(ProjectParty.id)
                )
            )
            signed = await session.get_one(SignOffRow, endorsement.signoff_id)
            documents = {
                kind: await session.scalar(
                    select(Dpia.id)
                    .where(Dpia.project_id == project_id, Dpia.kind == kind.value)
                    .order_by(Dpia.created_at.desc(), Dpia.id.desc())
                    .limit(1)
                )
                for kind in COPIED_KINDS
            }
        if any(p.organisation_id == organisation_id for p in parties):
            raise InvalidInput(
                "Your organisation is a party to this agreement already: sign it there"
            )
        origin = {
            "project": project_id,
            "isa": endorsement.isa_id,
            "reviewing_body": signed.party,
            "reviewing_body_id": signed.party_organisation_id,
            "signoff": signed.id,
            "content_hash": signed.content_hash,
            "seq": signed.seq,
            "endorsed_at": _aware(signed.created_at).isoformat(),
        }
        new_id = await self._projects.create_empty(
            user,
            source.title,
            organisation_id,
            step=IgStep.COMPLETE_ISA,
            parties=[(p.name, p.role, p.organisation_id) for p in parties],
            adopted_from=source.id,
            endorsement_origin=json.dumps(origin, sort_keys=True),
        )
        for kind in COPIED_KINDS:
            source_document = documents[kind]
            if source_document is not None:
                await self._copy(user, source_document, new_id, organisation_id, kind)
        return new_id

    async def _copy(
        self, user: CurrentUser, source_id: str, project_id: str, lead: int, kind: DocumentKind
    ) -> str:
        """A copy of a document's content (its comments left behind), as ``DpiaService.clone``
        makes, into another project; the adopter needs no access to the original."""
        return await self._dpias.copy_unchecked(
            user, source_id, lead, project_id=project_id, kind=kind
        )

    async def changes_from_endorsed(
        self, user: CurrentUser, isa_id: str
    ) -> list[FieldChange] | None:
        """The fields of an adopted ISA that differ from the text its reviewing body
        endorsed (the original ISA rebuilt at the endorsed seq); None for a document that is
        not an adopted ISA, or whose original is gone (nothing to compare with)."""
        await self._dpias.access(user, isa_id)
        async with self._sessions() as session:
            origin_raw = await session.scalar(
                select(Project.endorsement_origin)
                .join(Dpia, Dpia.project_id == Project.id)
                .where(Dpia.id == isa_id, Dpia.kind == DocumentKind.ISA.value)
            )
        if not origin_raw:
            return None
        origin = json.loads(origin_raw)
        try:
            endorsed = await self._history.version(str(origin["isa"]), int(origin["seq"]))
        except (DocumentNotFound, InvalidInput):
            return None
        template = await self._history.template_of(isa_id)
        current = await self._history.current(isa_id)
        return field_changes(template, endorsed.content, current.content)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
