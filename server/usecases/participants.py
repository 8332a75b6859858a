"""Who takes part in a DPIA and as what: a member's standing, invitations, roles, removals,
the parties and the section reviewers.

A change to who takes part, or as what, changes what they may do: once its transaction is
committed the rooms are told (``RoomManager.access_changed``), so that every open
connection to the DPIA, on every process, follows at once. ``DpiaService`` applies the
policies (``domain.dpias.manage_policy``, ``owner_kept_policy``) on the access it reads in
the same call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from server.domain.templates import load_template
from server.realtime.rooms import RoomManager
from server.services.accounts import CurrentUser
from server.services.dpias import Access, DpiaService
from server.services.notifications import NotificationService


@dataclass(frozen=True, slots=True)
class Member:
    """A signed-in user and their standing on one DPIA, resolved once per request."""

    user: CurrentUser
    access: Access

    @property
    def dpia_id(self) -> str:
        return self.access.dpia_id


@dataclass(frozen=True, slots=True)
class Participants:
    dpias: DpiaService
    notifications: NotificationService
    rooms: RoomManager

    async def member(self, user: CurrentUser, dpia_id: str) -> Member:
        """The user's standing on the DPIA; DocumentNotFound for everyone else (outsiders
        cannot learn that it exists)."""
        return Member(user, await self.dpias.access(user, dpia_id))

    async def invite(self, by: Member, email: str, role: str, name: str = "") -> int:
        """Add a participant (email-only when there is no account) and tell them."""
        participant_id = await self.dpias.invite(by.user, by.dpia_id, email, role, name)
        await self.rooms.access_changed(by.dpia_id)
        await self.notifications.record_invitation(by.dpia_id, participant_id, by.user.name)
        return participant_id

    async def change_role(self, by: Member, participant_id: int, role: str) -> None:
        await self.dpias.change_role(by.user, by.dpia_id, participant_id, role)
        await self.rooms.access_changed(by.dpia_id)

    async def remove(self, by: Member, participant_id: int) -> None:
        await self.dpias.remove(by.user, by.dpia_id, participant_id)
        await self.rooms.access_changed(by.dpia_id)

    async def add_party(
        self, by: Member, role: str, *, organisation_id: int | None = None, name: str = ""
    ) -> int:
        party_id = await self.dpias.add_party(
            by.user, by.dpia_id, role, organisation_id=organisation_id, name=name
        )
        await self.rooms.access_changed(by.dpia_id)
        return party_id

    async def remove_party(self, by: Member, party_id: int) -> None:
        await self.dpias.remove_party(by.user, by.dpia_id, party_id)
        await self.rooms.access_changed(by.dpia_id)

    async def set_reviewer(
        self, by: Member, section: str, participant_id: int, assigned: bool
    ) -> None:
        """Ask a participant to review a section (or stop asking); reviewers hear about it
        whatever they watch. Not an access change: reviewing needs the role, not this."""
        await self.dpias.set_reviewer(by.user, by.dpia_id, section, participant_id, assigned)

    async def set_reviews(self, by: Member, participant_id: int, sections: Iterable[str]) -> None:
        """The sections a participant reviews: exactly ``sections``."""
        chosen = set(sections)
        for section in load_template(
            by.access.template_id, by.access.template_version
        ).section_ids():
            await self.set_reviewer(by, section, participant_id, section in chosen)
