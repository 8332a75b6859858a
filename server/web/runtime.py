"""What request handlers receive from the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.access import Grant
from server.realtime.committer import GroupCommitter
from server.realtime.editing import DocumentEditing
from server.realtime.rooms import RoomManager
from server.services.accounts import AccountService
from server.services.administration import Administration
from server.services.adoption import AdoptionService
from server.services.audit import AuditTrail
from server.services.collaboration import CollaborationAccess
from server.services.dashboard import Dashboard
from server.services.dpias import DpiaService
from server.services.exports import ExportService
from server.services.health import Health
from server.services.history import HistoryService
from server.services.inbound import InboundStore
from server.services.indexing import SearchIndexer
from server.services.notifications import NotificationService
from server.services.oidc import OpenIdClient
from server.services.parties import PartySignOffService
from server.services.passwords import PasswordResets
from server.services.project_exports import ProjectExportService
from server.services.projects import ProjectService
from server.services.reviews import ReviewService
from server.services.ropa import RopaService
from server.services.search import SearchService
from server.services.signin import SignInDirectory
from server.services.signoffs import SignOffService
from server.services.workflow import WorkflowService
from server.settings import Settings
from server.usecases import UseCases


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    access: CollaborationAccess
    rooms: RoomManager
    committer: GroupCommitter
    accounts: AccountService
    dpias: DpiaService
    projects: ProjectService
    dashboard: Dashboard  # the projects dashboard: by step, waiting for me, overdue
    search: SearchService  # the searchable library across the documents a person sees
    indexer: SearchIndexer  # keeps the search index up to date after commits
    editing: DocumentEditing
    sessions: async_sessionmaker[AsyncSession]
    notifications: NotificationService
    inbound: InboundStore
    audit: AuditTrail
    history: HistoryService
    signoffs: SignOffService
    workflow: WorkflowService
    exports: ExportService
    project_exports: ProjectExportService
    health: Health
    passwords: PasswordResets
    signin: SignInDirectory  # organisations' identity providers, and single sign-on
    oidc: OpenIdClient
    administration: Administration  # organisations and people (reads; changes but suspension)
    parties: PartySignOffService  # every party's sign-off, endorsement, reminders
    adoption: AdoptionService  # endorsed agreements, adopting one, changes from it
    reviews: ReviewService  # review schedules, reminders, triggers (issue 17)
    ropa: RopaService  # organisations' records of processing activities (Article 30)
    usecases: UseCases  # every action on a DPIA: what handlers call to change anything

    async def access_token(self, token: str, document_id: str) -> Grant:
        """The grant of an API token for ``document_id``: checked, never trusted, and never
        more than the person it stands for has now."""
        return await self.access.recheck(self.access.verify_token(token, document_id))
