"""The tool's own data protection duties (decisions 92-95): deleting a DPIA, archiving the
ones whose retention ended, and erasing a person.

Deleting and erasing change what is stored underneath open editors, so both go through
``RoomManager.evict``: the DPIA's connections close with the reason, its room is dropped
after its pending changes commit, and the purge or rewrite runs before anyone can open it
again. An action that needs confirmation changes nothing without it: it raises
``ConfirmationNeeded``, which carries what would happen, for the page to ask.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, Conflict, DocumentNotFound, DomainError
from server.domain.protection import DeletionRule, delete_policy, erase_policy
from server.domain.tasks import stop_if_cancelled
from server.realtime.rooms import RoomManager
from server.services.accounts import CurrentUser
from server.services.dpias import DpiaService
from server.services.erasure import ErasureReport, ErasureService, Person, eraser_facts
from server.services.retention import RetentionService, RetentionView, Tombstone
from server.services.subject_access import SubjectAccess, SubjectAccessService
from server.usecases.documents import committed

log = logging.getLogger("opendpia.retention")
ERASE_RULE = "right to erasure (UK GDPR article 17)"


class ConfirmationNeeded(DomainError):
    """The action is allowed but was not confirmed; nothing changed."""


@dataclass(frozen=True, slots=True)
class DataProtection:
    dpias: DpiaService
    retention: RetentionService
    erasure: ErasureService
    subject_access: SubjectAccessService
    rooms: RoomManager

    async def deletion_rule(self, user: CurrentUser, dpia_id: str) -> DeletionRule:
        """Under which rule the user may delete the DPIA now, or the refusal saying why not
        (DocumentNotFound for someone not taking part, as everywhere)."""
        access = await self.dpias.access(user, dpia_id)
        view = await self.retention.view(dpia_id)
        return delete_policy(access.role, access.status, view.expired(datetime.now(UTC)))

    async def delete(self, user: CurrentUser, dpia_id: str, *, confirmed: bool) -> Tombstone:
        """Purge the DPIA (owners; a draft, or a closed one past its retention), leaving its
        tombstone; without ``confirmed``, ConfirmationNeeded and nothing changes."""
        rule = await self.deletion_rule(user, dpia_id)
        if not confirmed:
            raise ConfirmationNeeded(f"Confirm that {dpia_id} and all its history go")
        await committed(self.rooms, dpia_id)
        gone = DocumentNotFound("This DPIA has been deleted")
        return await self.rooms.evict(
            dpia_id, gone, lambda: self.retention.purge(dpia_id, rule, f"user:{user.id}")
        )

    async def archive_expired(self, now: datetime | None = None) -> list[RetentionView]:
        """Archive every closed DPIA whose retention ended (read-only at once for open
        editors) and return them all: the list waiting for an owner to confirm deletion."""
        expired = await self.retention.expired(now or datetime.now(UTC))
        for view in expired:
            if await self.retention.archive(view.dpia_id):
                self.rooms.set_read_only(view.dpia_id, locked_message(DpiaStatus.ARCHIVED))
                await self.rooms.access_changed(view.dpia_id)
        return await self.retention.expired(now or datetime.now(UTC))

    async def person(self, email: str) -> Person:
        return await self.erasure.find(email)

    async def export_person(self, email: str) -> SubjectAccess:
        """Everything held about the person (the channel decides who may ask)."""
        person = await self.erasure.find(email)
        for dpia_id in person.facts.dpias:
            await committed(self.rooms, dpia_id)  # their latest comments are in the log
        return await self.subject_access.export(email)

    async def erasable(
        self, by: CurrentUser | None, email: str, *, deployment_admin: bool = False
    ) -> Person:
        """The person with this address, if ``by`` may erase them (the refusal otherwise)."""
        facts = await eraser_facts(
            self.erasure.sessions, None if by is None else by.id, deployment_admin=deployment_admin
        )
        if not (facts.deployment_admin or facts.administers or facts.owns):
            # Refused before looking: nobody else learns whether an address is known here.
            raise AccessDenied("Only administrators and DPIA owners can erase people")
        person = await self.erasure.find(email)
        erase_policy(facts, person.facts).require()
        return person

    async def erase(
        self,
        by: CurrentUser | None,
        email: str,
        *,
        confirmed: bool,
        deployment_admin: bool = False,
    ) -> ErasureReport:
        """Erase the person with this address (``by`` None: the command line, speaking for
        the deployment's administrator); without ``confirmed``, ConfirmationNeeded."""
        person = await self.erasable(by, email, deployment_admin=deployment_admin)
        if not confirmed:
            raise ConfirmationNeeded(
                f"Confirm that {email} becomes {person.pseudonym} everywhere; this cannot be undone"
            )
        rewrite = person.rewrite()
        updates = 0
        notice = Conflict("A participant was erased from this DPIA: open it again")
        for dpia_id in sorted(person.facts.dpias):
            await committed(self.rooms, dpia_id)
            updates += await self.rooms.evict(
                dpia_id, notice, functools.partial(self.erasure.rewrite_document, dpia_id, rewrite)
            )
        report = await self.erasure.erase(
            person,
            erased_by="cli" if by is None else f"user:{by.id}",
            channel="cli" if by is None else "browser",
            rule=ERASE_RULE,
            updates=updates,
        )
        for dpia_id in report.dpias:
            named = await self.erasure.still_named(dpia_id, rewrite)
            report.still_named += [f"{dpia_id}: {path}" for path in named]
        return report


class RetentionKeeper:
    """The periodic task that archives closed DPIAs whose retention ended (``serve`` runs it
    in its task group; ``opendpia retention run`` does one round from cron)."""

    def __init__(self, protection: DataProtection, every_seconds: float) -> None:
        self._protection = protection
        self._every = every_seconds

    async def run(self, started: asyncio.Event) -> None:
        started.set()
        while True:
            stop_if_cancelled()
            try:
                waiting = await self._protection.archive_expired()
                if waiting:
                    log.info("%d DPIAs wait for an owner to confirm deletion", len(waiting))
            except Exception:
                log.exception("archiving expired DPIAs failed; trying again later")
            await asyncio.sleep(self._every)
