"""Starting a project's steps, with the documents drafted from the earlier ones.

Starting step 4 drafts the DPIA from the idea, the pre-screening and the feasibility;
starting step 5 drafts the information sharing agreement from the DPIA and records, for
each drafted field, its source (``SourceService.record``), so that a later DPIA change shows
on the ISA as "source changed". The mappings are ``domain.drafting``'s. A document is drafted
only from the earlier documents the starter takes part in, and only from what is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, Map

from server.domain.content import Content, document_content, write_content
from server.domain.drafting import Party, draft_isa, fill_empty, prefill_dpia
from server.domain.errors import AccessDenied, InvalidInput
from server.domain.projects import DocumentKind
from server.domain.templates import Template, load_template
from server.realtime.rooms import RoomManager
from server.services.accounts import CurrentUser
from server.services.history import HistoryService
from server.services.projects import ProjectService, ProjectView
from server.services.sources import Sources, SourceService
from server.usecases.documents import committed
from server.usecases.participants import Member

_EARLIER = (DocumentKind.IDEA, DocumentKind.PRESCREENING, DocumentKind.FEASIBILITY)


def drafted_update(template: Template, content: Content) -> bytes:
    """A new document's first update: the template's metadata and the drafted fields."""
    doc: Doc[Any] = Doc()
    meta = doc.get("meta", type=Map)
    with doc.transaction():
        meta["template"] = template.id
        meta["template_version"] = template.version
        write_content(doc, template, content)
    return doc.get_update()


@dataclass(frozen=True, slots=True)
class Projects:
    projects: ProjectService
    history: HistoryService
    links: SourceService
    rooms: RoomManager

    async def start_step(
        self, by: CurrentUser | Member, project_id: str, kind: DocumentKind
    ) -> str:
        """Start a step's document (owners of the project), drafted for the DPIA and the ISA;
        the new document's id."""
        user = by.user if isinstance(by, Member) else by
        view = await self.projects.view(user, project_id)
        if kind is DocumentKind.DPIA:
            earlier = await self._earlier(view)
            template = load_template(kind.template_id)
            drafted = prefill_dpia(
                earlier,
                templates={k: load_template(DocumentKind(k).template_id) for k in earlier},
            )
            return await self.projects.start_step(
                user, project_id, kind, initial_state=drafted_update(template, drafted)
            )
        if kind is DocumentKind.ISA:
            dpia = view.current(DocumentKind.DPIA)
            if dpia is None or dpia.role is None:
                return await self.projects.start_step(user, project_id, kind)
            await committed(self.rooms, dpia.id)
            dpia_template = await self.history.template_of(dpia.id)
            content = (await self.history.current(dpia.id)).content
            parties = [Party(p.name, str(p.role)) for p in view.parties]
            drafted, used = draft_isa(content, parties, dpia_template=dpia_template)
            isa_template = load_template(kind.template_id)
            isa_id = await self.projects.start_step(
                user, project_id, kind, initial_state=drafted_update(isa_template, drafted)
            )
            await self.links.record(
                isa_id, dpia.id, dpia_template, content, used, actor=f"user:{user.id}"
            )
            return isa_id
        return await self.projects.start_step(user, project_id, kind)

    async def fill_empty_fields(self, by: Member) -> list[str]:
        """Fill the DPIA's empty fields from steps 1-3 as they are now (owners and editors);
        the ``section.field`` paths written. Nothing anyone wrote is replaced."""
        if not by.access.role.can_write:
            raise AccessDenied("Only owners and editors can fill fields from earlier steps")
        project_id = await self.projects.project_of(by.dpia_id)
        if project_id is None:
            raise InvalidInput("This DPIA is not part of a project")
        view = await self.projects.view(by.user, project_id)
        dpia = view.current(DocumentKind.DPIA)
        if dpia is None or dpia.id != by.dpia_id:
            raise InvalidInput("Only the project's current DPIA is filled from earlier steps")
        earlier = await self._earlier(view)
        drafted = prefill_dpia(
            earlier, templates={k: load_template(DocumentKind(k).template_id) for k in earlier}
        )
        template = load_template(by.access.template_id, by.access.template_version)
        written: list[str] = []

        def write(doc: Doc[Any]) -> None:
            missing = fill_empty(document_content(doc, template), drafted)
            write_content(doc, template, missing)
            written.extend(f"{s}.{f}" for s, fields in missing.items() for f in fields)

        async with self.rooms.borrow(by.dpia_id) as room:
            room.edit(write, actor=f"user:{by.user.id}", channel="browser", origin="prefill")
            await room.all_saved()
        return written

    async def sources(self, by: Member) -> Sources:
        """The document's drafted fields and their sources (sign-offs follow a change)."""
        await committed(self.rooms, by.dpia_id)
        return await self.links.sources(by.user, by.dpia_id)

    async def confirm_source(self, by: Member, field: str) -> None:
        """Take a changed source as it is now as the field's baseline (owners, editors)."""
        await self.links.confirm(by.user, by.dpia_id, field)

    async def changed_sources(self, dpia_id: str) -> int:
        """How many of a document's drafted fields have a changed source (0 if none)."""
        return await self.links.changed_count(dpia_id)

    async def _earlier(self, view: ProjectView) -> dict[str, Content]:
        found: dict[str, Content] = {}
        for kind in _EARLIER:
            document = view.current(kind)
            if document is None or document.role is None:
                continue
            await committed(self.rooms, document.id)
            found[kind.value] = (await self.history.current(document.id)).content
        return found
