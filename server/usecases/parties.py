"""Signing for a party and endorsing as a reviewing body (issue 16).

Both bind the committed content, so the room's pending changes (what the signer saw on
screen) land first, as for every sign-off (``usecases.signoffs``). Who may sign for which
party, in which capacity, is ``domain.parties``' to say, applied by
``services.parties.PartySignOffService`` on the signer's memberships.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.rooms import RoomManager
from server.services.accounts import CurrentUser
from server.services.parties import PartySignOffService
from server.usecases.documents import committed


@dataclass(frozen=True, slots=True)
class PartySignOffs:
    parties: PartySignOffService
    rooms: RoomManager

    async def sign(
        self,
        user: CurrentUser,
        document_id: str,
        *,
        decision: str,
        organisation_id: int | None = None,
        capacity: str = "",
        reasons: str = "",
    ) -> int:
        """Sign ``document_id`` for one party in one capacity; the sign-off's id."""
        await committed(self.rooms, document_id)
        return await self.parties.sign_for_party(
            user,
            document_id,
            decision=decision,
            organisation_id=organisation_id,
            capacity=capacity,
            reasons=reasons,
        )

    async def endorse(
        self, user: CurrentUser, isa_id: str, *, decision: str, reasons: str = ""
    ) -> int:
        """Endorse (or withhold endorsement of) an ISA as its reviewing body."""
        await committed(self.rooms, isa_id)
        return await self.parties.endorse(user, isa_id, decision=decision, reasons=reasons)
