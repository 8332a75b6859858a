"""Moving a DPIA to the newest version of its template: what changes first, then the move.

Nothing is deleted: an answer whose field the new version lacks stays in the document (its
root or its ``values`` entry is left as it is) and is listed before and after the move, so
moving back, or a later version restoring the field, finds it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import Map

from server.domain.access import Channel
from server.domain.content import is_empty
from server.domain.errors import Conflict, DocumentNotFound, InvalidInput
from server.domain.template_library import TemplateChanges, template_changes
from server.domain.templates import Template, load_template
from server.realtime.rooms import RoomManager
from server.services.audit import AuditTrail
from server.services.dpias import DpiaService
from server.services.history import HistoryService
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class TemplateMove:
    current: Template
    newest: Template
    changes: TemplateChanges
    labels: dict[str, str]  # orphaned path -> "section title: field label" (old version)
    recorded: int  # the version the DPIA records (a shipped file may be newer than it)

    @property
    def needed(self) -> bool:
        return self.newest.version > self.recorded


def move_policy(member: Member) -> None:
    if not member.access.role.can_manage:
        raise DocumentNotFound("Only the DPIA's owners can move it to another template version")
    if member.access.status.is_locked:
        raise Conflict(
            "This DPIA is read-only in its status; start a new version to move it to the "
            "newest template"
        )


@dataclass(frozen=True, slots=True)
class TemplateMoves:
    dpias: DpiaService
    history: HistoryService
    rooms: RoomManager
    audit: AuditTrail

    async def preview(self, by: Member) -> TemplateMove:
        """What moving to the template's newest version would change (nothing changes)."""
        access = by.access
        current = load_template(access.template_id, access.template_version)
        newest = await self.dpias.templates.template(access.template_id)
        version = await self.history.current(by.dpia_id)
        answered = {
            f"{section}.{name}"
            for section, fields in version.content.items()
            for name, value in fields.items()
            if not is_empty(value)
        }
        changes = template_changes(current, newest, answered)
        labels = {
            f"{s['id']}.{f['id']}": f"{s['title']}: {f['label']}"
            for s in current.sections
            for f in s["fields"]
        }
        recorded = access.template_version or current.version
        return TemplateMove(current, newest, changes, labels, recorded)

    async def move(self, by: Member, to_version: int) -> TemplateMove:
        """Move to ``to_version``, which must be the newest the owner was shown."""
        move_policy(by)
        plan = await self.preview(by)
        if not plan.needed:
            raise InvalidInput("This DPIA already follows the newest version of its template")
        if plan.newest.version != to_version:
            raise Conflict(
                "A newer version of the template was published meanwhile: look at what "
                "it changes and confirm again"
            )
        actor = f"user:{by.user.id}"
        new = plan.newest

        def write(doc: object) -> None:
            meta = doc.get("meta", type=Map)  # type: ignore[attr-defined]
            meta["template_version"] = new.version

        # The record first: a process that sees the document's new version reads it there.
        await self.dpias.set_template_version(by.dpia_id, new.version)
        try:
            async with self.rooms.borrow(by.dpia_id) as room:
                room.edit(
                    write,
                    actor=actor,
                    channel=Channel.BROWSER.value,
                    origin=f"template:{new.id}@{new.version}",
                )
                await room.all_saved()
        except BaseException:
            await self.dpias.set_template_version(by.dpia_id, plan.recorded)
            raise
        kept = [plan.labels.get(p, p) for p in plan.changes.orphaned]
        await self.dpias.templates.record_move(
            self.audit,
            by.dpia_id,
            actor=actor,
            channel=Channel.BROWSER.value,
            title=new.title,
            from_version=plan.recorded,
            to_version=new.version,
            event={
                "summary": f"Moved from version {plan.recorded} to version "
                f"{new.version} of the template “{new.title}”"
                + (f"; answers kept without a field: {', '.join(kept)}" if kept else ""),
                "template": new.id,
                "from_version": plan.recorded,
                "to_version": new.version,
                "kept": plan.changes.orphaned,
            },
        )
        # Every process's room follows the new version (its guard accepts the new fields).
        await self.rooms.access_changed(by.dpia_id)
        return plan
