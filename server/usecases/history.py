"""Restoring a field from a past version: the one server-side write of a field's content.

The earlier version is not re-applied; its value of one field is written as a new change,
attributed to the restorer, through the room (so open editors see it) and chained in the
audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.access import Channel
from server.domain.content import find_field, plain_text, restore_policy
from server.domain.wording import field_label
from server.realtime.editing import DocumentEditing
from server.services.audit import AuditTrail
from server.services.history import HistoryService
from server.usecases.participants import Member


@dataclass(frozen=True, slots=True)
class History:
    history: HistoryService
    editing: DocumentEditing
    audit: AuditTrail

    async def restore(self, by: Member, path: str, seq: int) -> bool:
        """Write field ``path`` as it was at version ``seq``; True if that changed anything."""
        restore_policy(by.access.role, by.access.status).require()
        dpia_id = by.dpia_id
        actor = f"user:{by.user.id}"
        template = await self.history.template_of(dpia_id)
        section, spec = find_field(template, path)
        version = await self.history.version(dpia_id, seq)
        value = version.content[section][spec["id"]]
        changed = await self.editing.restore_field(
            dpia_id, path, value, template=template, actor=actor, channel=Channel.BROWSER.value
        )
        await self.audit.record(
            dpia_id,
            "restore",
            actor=actor,
            section=section,
            data={
                "summary": f"Restored {field_label(template.sections, path)} to version {seq}: "
                f"{plain_text(value)[:120]}",
                "field": path,
                "from_seq": seq,
            },
        )
        return changed
