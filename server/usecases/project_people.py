"""Who takes part in a whole project: adding a person or an organisation to every document
of it at once (owners).

``ProjectService`` decides and records, document by document, with the invitation rules of
a single DPIA; here each document's room is told that access changed, and the person hears
once, about the project's newest document, rather than once per document.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.rooms import RoomManager
from server.services.accounts import CurrentUser
from server.services.notifications import NotificationService
from server.services.projects import Added, ProjectService


@dataclass(frozen=True, slots=True)
class ProjectPeople:
    projects: ProjectService
    notifications: NotificationService
    rooms: RoomManager

    async def add_person(
        self, by: CurrentUser, project_id: str, email: str, role: str, name: str = ""
    ) -> Added:
        added = await self.projects.add_person(by, project_id, email, role, name)
        for document_id, _ in added.added:
            await self.rooms.access_changed(document_id)
        newest, participant_id = added.added[-1]
        await self.notifications.record_invitation(newest, participant_id, by.name)
        return added

    async def add_party(
        self,
        by: CurrentUser,
        project_id: str,
        role: str,
        *,
        organisation_id: int | None = None,
        name: str = "",
    ) -> Added:
        added = await self.projects.add_party(
            by, project_id, role, organisation_id=organisation_id, name=name
        )
        for document_id, _ in added.added:
            await self.rooms.access_changed(document_id)
        return added
