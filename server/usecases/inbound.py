"""The owners' side of a DPIA's inbound mail: what became of each reply, and deciding
about replies held for failing DMARC, and addresses that bounce.

The policy is ``domain.dpias.inbound_mail_policy``: owners only. A released reply goes back
to the email bridge, which posts it through ``usecases.comments`` like any other.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.dpias import inbound_mail_policy
from server.services.dpias import DpiaService, ParticipantView
from server.services.inbound import InboundStore
from server.storage.models import InboundMessage, MailHealth
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class InboundView:
    messages: list[InboundMessage]
    health: dict[int, MailHealth]  # participant id -> the health of their address
    people: dict[int, ParticipantView]


@dataclass(frozen=True, slots=True)
class InboundMail:
    inbound: InboundStore
    dpias: DpiaService

    async def view(self, by: Member) -> InboundView:
        inbound_mail_policy(by.access.role).require()
        return InboundView(
            await self.inbound.for_dpia(by.dpia_id),
            await self.inbound.mail_health(by.dpia_id),
            {p.id: p for p in await self.dpias.participants(by.user, by.dpia_id)},
        )

    async def release(self, by: Member, message_id: int) -> None:
        """Post a held reply after all: the bridge processes it again, without the hold."""
        inbound_mail_policy(by.access.role).require()
        await self.inbound.release(by.dpia_id, message_id, by.user.name)

    async def discard(self, by: Member, message_id: int) -> None:
        inbound_mail_policy(by.access.role).require()
        await self.inbound.discard(by.dpia_id, message_id, by.user.name)

    async def resume_mail(self, by: Member, participant_id: int) -> None:
        """The owner says a bouncing address works again: mail to it resumes."""
        inbound_mail_policy(by.access.role).require()
        await self.inbound.resume_mail(by.dpia_id, participant_id)
