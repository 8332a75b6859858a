"""Administrative actions that reach open connections: suspending or reinstating a person.

``services.administration`` records the change and its audit event in one transaction;
once it is committed, every DPIA the person takes part in is told
(``RoomManager.access_changed``), so their open editors close at once, on every process,
as ``opendpia suspend-user`` and a new password make them do (decisions 55 and 56).
Everything else an administrator does changes no one's access to a DPIA and goes straight
to the service.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.rooms import RoomManager
from server.services.admin_records import Actor, PersonView
from server.services.administration import Administration
from server.services.dpias import DpiaService


@dataclass(frozen=True, slots=True)
class Administer:
    administration: Administration
    dpias: DpiaService
    rooms: RoomManager

    async def set_active(
        self, actor: Actor, user_id: int, active: bool, organisation_id: int | None = None
    ) -> PersonView:
        person = await self.administration.set_active(actor, user_id, active, organisation_id)
        for dpia_id in await self.dpias.documents_of(user_id):
            await self.rooms.access_changed(dpia_id)
        return person
