"""Signing, re-confirming and revoking sign-offs.

The policies are ``domain.workflow``'s (``signing_policy``, ``signer_policy``), applied by
``SignOffService`` on what it reads. A signature binds the committed content, so the room's
pending changes (what the signer saw on screen) land before anything is hashed.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.rooms import RoomManager
from server.services.signoffs import SignOffService
from server.usecases.documents import committed
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class SignOffs:
    signoffs: SignOffService
    rooms: RoomManager

    async def sign(
        self,
        by: Member,
        *,
        kind: str,
        decision: str,
        target: str = "",
        conditions: str = "",
        reasons: str = "",
    ) -> int:
        """Record a sign-off over the content as committed now; its id."""
        await committed(self.rooms, by.dpia_id)
        return await self.signoffs.sign(
            by.user,
            by.dpia_id,
            kind=kind,
            decision=decision,
            target=target,
            conditions=conditions,
            reasons=reasons,
        )

    async def reconfirm(self, by: Member, signoff_id: int) -> int:
        """Sign the same again over the content as it is now; the new sign-off's id."""
        await committed(self.rooms, by.dpia_id)
        return await self.signoffs.reconfirm(by.user, by.dpia_id, signoff_id)

    async def revoke(self, by: Member, signoff_id: int) -> None:
        await self.signoffs.revoke(by.user, by.dpia_id, signoff_id)
