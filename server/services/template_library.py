"""The template library: organisations' own templates in the database beside the shipped
files, which templates an organisation may use, and filling this process's registry.

A published version never changes, so the registry in ``domain.templates`` can hold it for
good in every process: a process can only *lack* a version (published or first used by
another process), never hold a stale one. ``ensure`` fills a missing version from the
database, and every async path that reads a DPIA's template id from the database calls it
first (``DpiaService`` does, for every participant's access and state), so the many sync
callers of ``load_template`` find it. Drafts never enter the registry: only their editor
reads them, from the database (docs/template-library.md).

Every change to the library (a template made, a draft opened or saved, a version published,
a template adopted) and every DPIA moved to another version goes to ``on_change`` (the
administration's audit chain) inside the transaction that makes it, so an administrator
sees who did what (``/admin/organisations/{code}/audit``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.domain.errors import Conflict, DocumentNotFound, InvalidInput
from server.domain.projects import DocumentKind
from server.domain.template_library import check_title, derive, new_template_id, parse_draft
from server.domain.templates import (
    DEFAULT_TEMPLATE,
    MalformedTemplate,
    Template,
    UnknownTemplate,
    is_registered,
    is_shipped,
    load_template,
    register_template,
    template_ids,
)
from server.services.admin_audit import ChangeRecorder, log_change
from server.services.audit import AuditTrail
from server.storage.models import Dpia, Organisation, OrganisationTemplate, TemplateAdoption

DRAFT, PUBLISHED = "draft", "published"
log = logging.getLogger("opendpia.templates")
NO_TEMPLATE = "There is no such template, or your organisation may not use it"


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    """A template an organisation may make a DPIA from, at its newest published version."""

    id: str
    version: int
    title: str
    source: str  # "shipped", "own" or "adopted"
    publisher: str  # the organisation's name; "" for a shipped template


@dataclass(frozen=True, slots=True)
class OwnTemplate:
    id: str
    title: str
    published: int | None  # newest published version
    draft: int | None  # the draft's version, if one is open
    based_on: str


@dataclass(frozen=True, slots=True)
class PublishedTemplate:
    id: str
    title: str
    version: int
    publisher: str
    adopted: bool


@dataclass(frozen=True, slots=True)
class Draft:
    id: str
    version: int
    title: str
    text: str  # the JSON, indented for the editor
    based_on: str


def dpia_templates() -> list[str]:
    """Shipped templates a DPIA may be made from: every shipped one that is not the record
    of another project step (those are made by their step, docs/projects.md)."""
    steps = {kind.template_id for kind in DocumentKind if kind is not DocumentKind.DPIA}
    return [t for t in template_ids() if t not in steps]


# What the administration's audit chain calls each change (wording.ADMIN_EVENTS labels them).
MADE, DRAFTED, SAVED = "template_made", "template_draft_opened", "template_saved"
PUBLISHED_EVENT, ADOPTED, MOVED = "template_published", "template_adopted", "dpia_template_moved"


class TemplateLibrary:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], on_change: ChangeRecorder = log_change
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change

    # -- the registry --------------------------------------------------------------------

    async def preload(self) -> int:
        """Register every published version (at start); how many."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrganisationTemplate).where(OrganisationTemplate.state == PUBLISHED)
                )
            ).all()
        for row in rows:
            _register(row)
        return len(rows)

    async def ensure(self, template_id: str, version: int | None = None) -> None:
        """Make ``template_id`` at ``version`` (None: every published version) loadable in
        this process; nothing if it already is, or if the database has no such version."""
        if is_registered(template_id, version):
            return
        query = select(OrganisationTemplate).where(
            OrganisationTemplate.template_id == template_id,
            OrganisationTemplate.state == PUBLISHED,
        )
        if version is not None:
            query = query.where(OrganisationTemplate.version == version)
        async with self._sessions() as session:
            for row in (await session.scalars(query)).all():
                _register(row)

    async def template(self, template_id: str, version: int | None = None) -> Template:
        await self.ensure(template_id, version)
        return load_template(template_id, version)

    # -- what an organisation may use ----------------------------------------------------

    async def choices(self, organisation_ids: list[int]) -> list[TemplateChoice]:
        """Shipped DPIA templates, then the organisations' own published templates, then
        those they adopted; each at its newest published version."""
        found = [
            TemplateChoice(t.id, t.version, t.title, "shipped", "")
            for t in (load_template(i) for i in dpia_templates())
        ]
        found.sort(key=lambda c: (c.id != DEFAULT_TEMPLATE, c.title))
        async with self._sessions() as session:
            adopted = set(
                (
                    await session.scalars(
                        select(TemplateAdoption.template_id).where(
                            TemplateAdoption.organisation_id.in_(organisation_ids)
                        )
                    )
                ).all()
            )
            rows = await _newest_published(session)
        seen = set()
        for row, publisher in rows:
            own = row.organisation_id in organisation_ids
            if (own or row.template_id in adopted) and row.template_id not in seen:
                seen.add(row.template_id)
                found.append(
                    TemplateChoice(
                        row.template_id,
                        row.version,
                        row.title,
                        "own" if own else "adopted",
                        publisher,
                    )
                )
        return found

    async def choose(self, organisation_ids: list[int], template_id: str) -> Template:
        """The newest version of a template these organisations may use, registered here."""
        for choice in await self.choices(organisation_ids):
            if choice.id == template_id:
                return await self.template(choice.id, choice.version)
        raise InvalidInput("Choose a template your organisation may use")

    async def may_use(self, organisation_ids: list[int], template_id: str) -> bool:
        return any(c.id == template_id for c in await self.choices(organisation_ids))

    # -- an organisation's own templates -------------------------------------------------

    async def own(self, organisation_id: int) -> list[OwnTemplate]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(OrganisationTemplate)
                    .where(OrganisationTemplate.organisation_id == organisation_id)
                    .order_by(OrganisationTemplate.template_id, OrganisationTemplate.version)
                )
            ).all()
        by_id: dict[str, OwnTemplate] = {}
        for row in rows:
            before = by_id.get(row.template_id)
            published = row.version if row.state == PUBLISHED else None
            by_id[row.template_id] = OwnTemplate(
                row.template_id,
                row.title,
                published or (before.published if before else None),
                row.version if row.state == DRAFT else None,
                row.based_on,
            )
        return sorted(by_id.values(), key=lambda t: t.title.lower())

    async def published_elsewhere(self, organisation_id: int) -> list[PublishedTemplate]:
        """Other organisations' published templates, and whether this one adopted each."""
        async with self._sessions() as session:
            adopted = set(
                (
                    await session.scalars(
                        select(TemplateAdoption.template_id).where(
                            TemplateAdoption.organisation_id == organisation_id
                        )
                    )
                ).all()
            )
            rows = await _newest_published(session)
        return [
            PublishedTemplate(r.template_id, r.title, r.version, p, r.template_id in adopted)
            for r, p in rows
            if r.organisation_id != organisation_id
        ]

    async def start(
        self,
        organisation_id: int,
        source_id: str,
        title: str,
        actor: str,
        channel: str = "browser",
    ) -> str:
        """A new template of the organisation's, as a draft copy of one it may use;
        ``actor`` (``user:<id>``) and ``channel`` as the audit chain records them."""
        title = check_title(title)
        source = await self.choose([organisation_id], source_id)
        async with self._sessions.begin() as session:
            org = await session.get_one(Organisation, organisation_id)
            base = new_template_id(org.code, title)
            template_id, n = base, 1
            while is_shipped(template_id) or (
                await session.get(OrganisationTemplate, (template_id, 1)) is not None
            ):
                n += 1
                template_id = f"{base[:46]}-{n}"
            session.add(
                OrganisationTemplate(
                    template_id=template_id,
                    version=1,
                    organisation_id=organisation_id,
                    title=title,
                    content=json.dumps(derive(source, template_id, 1, title)),
                    based_on=f"{source.id}@{source.version}",
                    state=DRAFT,
                    created_by=actor,
                    created_at=datetime.now(UTC),
                )
            )
            await self._record(
                session,
                MADE,
                actor,
                channel,
                organisation_id,
                template=template_id,
                title=title,
                based_on=f"{source.title}, version {source.version}",
            )
        return template_id

    async def newest(self, organisation_id: int, template_id: str) -> tuple[Draft, bool]:
        """The template's newest version (a draft, or the newest published), and whether it
        is a draft. Nothing is created."""
        async with self._sessions() as session:
            row = (await _versions(session, organisation_id, template_id))[-1]
        text = json.dumps(json.loads(row.content), indent=2, ensure_ascii=False)
        return Draft(template_id, row.version, row.title, text, row.based_on), row.state == DRAFT

    async def draft(
        self, organisation_id: int, template_id: str, actor: str, channel: str = "browser"
    ) -> Draft:
        """The template's open draft; a published template gets one, a copy of its newest
        version numbered one more."""
        async with self._sessions.begin() as session:
            rows = await _versions(session, organisation_id, template_id)
            newest = rows[-1]
            if newest.state == PUBLISHED:
                content = json.loads(newest.content)
                content["version"] = newest.version + 1
                newest = OrganisationTemplate(
                    template_id=template_id,
                    version=newest.version + 1,
                    organisation_id=organisation_id,
                    title=newest.title,
                    content=json.dumps(content),
                    based_on=f"{template_id}@{newest.version}",
                    state=DRAFT,
                    created_by=actor,
                    created_at=datetime.now(UTC),
                )
                session.add(newest)
                await self._record(
                    session,
                    DRAFTED,
                    actor,
                    channel,
                    organisation_id,
                    template=template_id,
                    title=newest.title,
                    version=newest.version,
                )
        return Draft(
            template_id,
            newest.version,
            newest.title,
            json.dumps(json.loads(newest.content), indent=2, ensure_ascii=False),
            newest.based_on,
        )

    async def save(
        self,
        organisation_id: int,
        template_id: str,
        text: str,
        actor: str = "",
        channel: str = "browser",
    ) -> Draft:
        """Check and keep the draft's JSON. InvalidInput (naming the field) if malformed."""
        async with self._sessions.begin() as session:
            row = (await _versions(session, organisation_id, template_id))[-1]
            if row.state != DRAFT:
                raise Conflict("This version is published and cannot change; open a new draft")
            content = parse_draft(text, template_id, row.version)
            row.content = json.dumps(content)
            row.title = check_title(str(content["title"]))
            await self._record(
                session,
                SAVED,
                actor,
                channel,
                organisation_id,
                template=template_id,
                title=row.title,
                version=row.version,
            )
        return Draft(
            template_id,
            row.version,
            row.title,
            json.dumps(content, indent=2, ensure_ascii=False),
            row.based_on,
        )

    async def publish(
        self, organisation_id: int, template_id: str, actor: str = "", channel: str = "browser"
    ) -> int:
        """Publish the draft: from now on this version never changes. Its version."""
        async with self._sessions.begin() as session:
            row = (await _versions(session, organisation_id, template_id))[-1]
            if row.state != DRAFT:
                raise Conflict("There is no draft to publish: this version is already published")
            try:
                register_template(json.loads(row.content))  # checked once more
            except MalformedTemplate as error:
                raise InvalidInput(str(error)) from None
            row.state = PUBLISHED
            row.published_at = datetime.now(UTC)
            await self._record(
                session,
                PUBLISHED_EVENT,
                actor,
                channel,
                organisation_id,
                template=template_id,
                title=row.title,
                version=row.version,
            )
            return row.version

    async def adopt(
        self, organisation_id: int, template_id: str, actor: str, channel: str = "browser"
    ) -> None:
        """Let the organisation use another's published template (a reference: its new
        versions reach the adopter)."""
        elsewhere = await self.published_elsewhere(organisation_id)
        found = [t for t in elsewhere if t.id == template_id]
        if not found:
            raise DocumentNotFound(NO_TEMPLATE)
        try:
            async with self._sessions.begin() as session:
                if await session.get(TemplateAdoption, (organisation_id, template_id)) is None:
                    session.add(
                        TemplateAdoption(
                            organisation_id=organisation_id,
                            template_id=template_id,
                            adopted_by=actor,
                            adopted_at=datetime.now(UTC),
                        )
                    )
                    await self._record(
                        session,
                        ADOPTED,
                        actor,
                        channel,
                        organisation_id,
                        template=template_id,
                        title=found[0].title,
                        publisher=found[0].publisher,
                    )
        except IntegrityError:
            return  # adopted at the same moment by another administrator

    async def record_move(
        self,
        audit: AuditTrail,
        dpia_id: str,
        *,
        actor: str,
        channel: str,
        title: str,
        from_version: int,
        to_version: int,
        event: dict[str, Any],
    ) -> None:
        """Record a DPIA's move to another version of its template, in one transaction:
        ``event`` (the data of the ``template`` event) in the DPIA's own chain, and the move
        in the administration's chain under the DPIA's lead organisation."""
        async with self._sessions.begin() as session:
            lead = await session.scalar(select(Dpia.lead_organisation_id).where(Dpia.id == dpia_id))
            # The administration's chain first, as every administrative change locks it.
            await self._on_change(
                session,
                MOVED,
                actor=actor,
                channel=channel,
                organisation_id=lead,
                data={
                    "before": {"dpia": dpia_id, "title": title, "version": from_version},
                    "after": {"version": to_version},
                },
            )
            await audit.append(session, dpia_id, "template", actor=actor, data=event)

    async def _record(
        self,
        session: AsyncSession,
        kind: str,
        actor: str,
        channel: str,
        organisation_id: int,
        **after: object,
    ) -> None:
        await self._on_change(
            session,
            kind,
            actor=actor or "system",
            channel=channel,
            organisation_id=organisation_id,
            data={"before": {}, "after": after},
        )


async def _versions(
    session: AsyncSession, organisation_id: int, template_id: str
) -> list[OrganisationTemplate]:
    rows = list(
        (
            await session.scalars(
                select(OrganisationTemplate)
                .where(
                    OrganisationTemplate.template_id == template_id[:50],
                    OrganisationTemplate.organisation_id == organisation_id,
                )
                .order_by(OrganisationTemplate.version)
            )
        ).all()
    )
    if not rows:
        raise DocumentNotFound(NO_TEMPLATE)
    return rows


async def _newest_published(
    session: AsyncSession,
) -> list[tuple[OrganisationTemplate, str]]:
    newest = (
        select(
            OrganisationTemplate.template_id,
            func.max(OrganisationTemplate.version).label("version"),
        )
        .where(OrganisationTemplate.state == PUBLISHED)
        .group_by(OrganisationTemplate.template_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(OrganisationTemplate, Organisation.name)
            .join(
                newest,
                (newest.c.template_id == OrganisationTemplate.template_id)
                & (newest.c.version == OrganisationTemplate.version),
            )
            .join(Organisation, Organisation.id == OrganisationTemplate.organisation_id)
            .order_by(OrganisationTemplate.title)
        )
    ).all()
    return [(row[0], row[1]) for row in rows]


def _register(row: OrganisationTemplate) -> None:
    try:
        register_template(json.loads(row.content))
    except (MalformedTemplate, ValueError, UnknownTemplate) as error:
        # Checked when saved and published; a row changed by hand is named, not served.
        log.error(
            "organisation template %s version %s is not loaded: %s",
            row.template_id,
            row.version,
            error,
        )
