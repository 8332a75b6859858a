"""Sign-off by every party (issue 16): the party sign-off service wired as the app wires it,
and a two-party project with its DPIA and ISA, shared by the integration and live tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from server.domain.projects import DocumentKind
from server.services.accounts import CurrentUser
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.services.parties import PartySignOffService
from server.services.projects import ProjectService
from server.services.signoffs import SignOffService
from server.storage.models import ProjectParty
from server.storage.updates import SqlUpdateStore


def party_service(
    sessions: async_sessionmaker[Any],
    store: SqlUpdateStore,
    dpias: DpiaService,
    projects: ProjectService,
    history: HistoryService,
    signoffs: SignOffService,
    audit: AuditTrail,
) -> PartySignOffService:
    return PartySignOffService(
        sessions,
        dpias=dpias,
        projects=projects,
        history=history,
        signoffs=signoffs,
        audit=audit,
        store=store,
        base_url="https://dpia.test",
        mail_from="OpenDPIA <n@dpia.test>",
    )


async def joint_project(
    sessions: async_sessionmaker[Any],
    dpias: DpiaService,
    lead: CurrentUser,
    partner: tuple[int, str],
    signers: list[str],
) -> tuple[str, str, str]:
    """A project led by ``lead``'s first organisation with ``partner`` (id, name) a joint
    controller, its DPIA and ISA started and ``signers`` invited to both as commenters;
    (project, DPIA, ISA)."""
    projects = ProjectService(sessions, dpias)
    project_id = await projects.create(lead, "Rough sleeping data", lead.organisation_ids[0])
    async with sessions.begin() as session:
        session.add(
            ProjectParty(
                project_id=project_id,
                organisation_id=partner[0],
                name=partner[1],
                role="joint_controller",
            )
        )
    dpia_id = await projects.start_step(lead, project_id, DocumentKind.DPIA)
    # The ISA's own template is another helper's; the DPIA's serves here (it names signatories).
    isa_id = await dpias.create(
        lead,
        "Rough sleeping data",
        lead.organisation_ids[0],
        project_id=project_id,
        kind=DocumentKind.ISA,
    )
    for document in (dpia_id, isa_id):
        for email in signers:
            await dpias.invite(lead, document, email, "commenter")
    return project_id, dpia_id, isa_id
