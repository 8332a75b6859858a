"""The DPIA's life and its sections' review: status changes, section steps, the IG step.

The policies are ``domain.workflow``'s (``transition``, ``section_step_policy``,
``ig_step_policy``), applied by ``WorkflowService`` with the gates that read the content and
the sign-offs. What is gated or reviewed is the committed document, so the room's pending
changes land first. A status change tells the rooms (this DPIA's and, on approval, the
superseded version's): a locked DPIA turns read-only for connected editors at once, and
every connection is decided again, since a status decides what each role may do.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.dpias import DpiaStatus, locked_message
from server.domain.workflow import IgStep, SectionState
from server.realtime.rooms import RoomManager
from server.services.dpias import DpiaService
from server.services.workflow import WorkflowService
from server.usecases.documents import committed
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class Workflow:
    workflow: WorkflowService
    dpias: DpiaService
    rooms: RoomManager

    async def move(self, by: Member, status: str, reasons: str = "") -> DpiaStatus:
        """Move the DPIA to ``status`` if the transition and its gates allow it."""
        await committed(self.rooms, by.dpia_id)
        moved = await self.workflow.move(by.user, by.dpia_id, status, reasons)
        self.rooms.set_read_only(by.dpia_id, locked_message(moved) if moved.is_locked else None)
        await self.rooms.access_changed(by.dpia_id)
        if moved in (DpiaStatus.APPROVED, DpiaStatus.APPROVED_WITH_CONDITIONS):
            # An approved new version supersedes the one it came from: tell that room too.
            origin = await self.dpias.origin_of(by.dpia_id)
            if origin is not None:
                self.rooms.set_read_only(origin, await self.workflow.lock_reason(origin))
                await self.rooms.access_changed(origin)
        return moved

    async def section_step(
        self, by: Member, section: str, step: str, reasons: str = ""
    ) -> SectionState:
        """Submit, review, send back or reopen a section; its new state."""
        await committed(self.rooms, by.dpia_id)
        return await self.workflow.section(by.user, by.dpia_id, section, step, reasons)

    async def set_ig_step(self, by: Member, step: str) -> IgStep:
        """Say where the project stands in the seven-step IG process (owners)."""
        return await self.workflow.set_ig_step(by.user, by.dpia_id, step)
