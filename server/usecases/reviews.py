"""Review cycles (issue 17): starting a review, and raising a review trigger from any
channel (a signed-in participant's form, an email reply).

Starting a review waits for the room's pending changes (none: the document is locked), then
the service moves the approved version to "under review" and opens the new version; the
rooms of both are told. The new version's review date starts empty (one logged change by
the person who started the review): the date that called for the review is behind it, and
its schedule starts again from its own approval (its date once set, or its frequency).
A trigger is raised by any participant, whatever their role: it changes no content, it asks
the owners and the DPO to look again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Map

from server.domain.access import Channel
from server.domain.dpias import locked_message
from server.domain.errors import DocumentNotFound
from server.domain.reviews import check_trigger_report, review_cycle_of
from server.realtime.rooms import RoomManager
from server.services.dpias import Access, DpiaService
from server.services.reviews import ReviewService
from server.usecases.comments import EmailParticipant
from server.usecases.documents import committed
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class Reviews:
    reviews: ReviewService
    dpias: DpiaService
    rooms: RoomManager

    async def start(self, by: Member, reason: str) -> str:
        """Start a review of ``by``'s document because of ``reason`` ("date" or a trigger's
        id); the new version's id."""
        await committed(self.rooms, by.dpia_id)
        new_id = await self.reviews.start(by.user, by.dpia_id, by.access.role, reason)
        status = (await self.dpias.access(by.user, by.dpia_id)).status
        self.rooms.set_read_only(by.dpia_id, locked_message(status))
        await self.rooms.access_changed(by.dpia_id)
        template = await self.dpias.templates.template(
            by.access.template_id, by.access.template_version
        )
        cycle = review_cycle_of(template.content)
        if cycle is not None:
            date_field = cycle.date_field

            def clear(doc: Doc[Any]) -> None:
                values = doc.get("values", type=Map)
                if date_field in values:
                    del values[date_field]

            async with self.rooms.borrow(new_id) as room:
                room.edit(
                    clear,
                    actor=f"user:{by.user.id}",
                    channel=Channel.BROWSER.value,
                    origin="review:new-cycle",
                )
                await room.all_saved()
        return new_id

    async def raise_trigger(
        self, by: Member | EmailParticipant, trigger: str, what: str, *, dpia_id: str = ""
    ) -> str:
        """Raise a review trigger on the document; the trigger's label."""
        if isinstance(by, Member):
            access: Access | None = by.access
            actor, channel = f"user:{by.user.id}", Channel.BROWSER.value
        else:
            access = await self.dpias.participant_access(by.participant_id)
            actor, channel = f"participant:{by.participant_id}", Channel.EMAIL.value
        if access is None or (dpia_id and access.dpia_id != dpia_id):
            raise DocumentNotFound("There is no such DPIA, or it is not shared with you")
        template = await self.dpias.templates.template(access.template_id, access.template_version)
        cycle = review_cycle_of(template.content)
        chosen, cleaned = check_trigger_report(cycle, access.status, trigger, what)
        await self.reviews.record_trigger(
            access.dpia_id,
            chosen,
            cleaned,
            actor=actor,
            actor_name=access.name or (by.user.name if isinstance(by, Member) else ""),
            channel=channel,
        )
        return chosen.label
