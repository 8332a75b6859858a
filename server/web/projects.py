"""The project pages: the dashboard (projects by step, what waits for me, what is overdue),
a new project, and one project's seven steps with its parties and people.

As the other pages: each handler resolves the signed-in user once (``web.context``),
changes anything through one service or use case, and shows a domain error inside its form
(or as the error page, with the status of ``web.errors``). Someone who takes part in no
document of a project gets 404, never 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import logs
from server.domain import wording
from server.domain.access import Role
from server.domain.dpias import PartyRole
from server.domain.errors import DomainError, InvalidInput
from server.domain.inputs import whole_number
from server.domain.projects import DocumentKind, check_document_kind
from server.domain.templates import UnknownTemplate, load_template
from server.domain.workflow import IgStep
from server.services.projects import ProjectDocument, ProjectView
from server.web.context import UserRequest, user_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page


@dataclass(frozen=True, slots=True)
class StepRow:
    """One of the seven steps as the project page lists it."""

    step: IgStep
    kind: DocumentKind
    document: ProjectDocument | None
    last_activity: datetime | None
    current: bool
    startable: bool  # an owner may start it now (not started, and its template exists)


@user_page
async def dashboard(context: UserRequest) -> Response:
    request, runtime = context.request, context.runtime
    raw = request.query_params.get("step", "")
    step = raw if raw in IgStep.__members__.values() else ""
    view = await runtime.dashboard.for_user(context.user, step=step)
    return page(
        request,
        "projects.html",
        d=view,
        signatures=await runtime.parties.outstanding_for(context.user),
        step=step,
        steps=list(IgStep),
        today=datetime.now(UTC).date(),
    )


@user_page
async def new_project(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    mine = await runtime.accounts.organisations_of(user)
    if request.method == "GET":
        return page(request, "project_new.html", organisations=mine, values={})
    data = await form(request)
    values = {k: field(data, k) for k in ("title", "lead")}
    try:
        if not values["lead"]:
            raise InvalidInput("Choose the lead organisation")
        lead = whole_number(values["lead"], "The lead organisation")
        project_id = await runtime.projects.create(user, values["title"], lead)
    except DomainError as error:
        return page(
            request,
            "project_new.html",
            http_status_for(error),
            organisations=mine,
            values=values,
            error=str(error),
            error_field="lead" if "organisation" in str(error) else "title",
        )
    return RedirectResponse(f"/projects/{project_id}", status_code=303)


@user_page
async def project_page(context: UserRequest) -> Response:
    return await _project_page(context)


async def _project_page(
    context: UserRequest,
    *,
    status: int = 200,
    error: str | None = None,
    error_field: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    project_id = request.path_params["project_id"]
    logs.document_id.set(project_id[:100])
    view = await runtime.projects.view(user, project_id)
    activity = await runtime.projects.last_activity(project_id)
    return page(
        request,
        "project.html",
        status,
        p=view,
        rows=_rows(view, activity),
        people=await runtime.projects.people(user, project_id),
        signoffs=await runtime.parties.status(user, project_id),
        roles=list(Role),
        party_roles=list(PartyRole),
        organisations=await runtime.dpias.organisations() if view.can_manage else [],
        message=request.query_params.get("done", "")[:200],
        error=error,
        error_field=error_field,
        values=values or {},
    )


def _rows(view: ProjectView, activity: dict[str, datetime]) -> list[StepRow]:
    rows = []
    for step in IgStep:
        kind = DocumentKind.for_step(step)
        document = view.current(kind)
        rows.append(
            StepRow(
                step,
                kind,
                document,
                activity.get(document.id) if document else None,
                step is view.step,
                view.can_manage and document is None and _template_exists(kind),
            )
        )
    return rows


def _template_exists(kind: DocumentKind) -> bool:
    try:
        load_template(kind.template_id)
    except UnknownTemplate:
        return False  # this installation does not have the step's template yet
    return True


async def start_step(context: UserRequest, project_id: str, kind: DocumentKind) -> str:
    """Start a step's document, drafted from the earlier steps (the DPIA from steps 1-3, the
    ISA from the DPIA)."""
    return await context.runtime.usecases.projects.start_step(context.user, project_id, kind)


@user_page
async def start(context: UserRequest) -> Response:
    project_id = context.request.path_params["project_id"]
    data = await form(context.request)
    await context.runtime.projects.view(context.user, project_id)  # outsiders: 404 first
    kind = check_document_kind(field(data, "kind", 30))
    if not _template_exists(kind):
        raise InvalidInput(wording.step_not_available(kind.label))
    document_id = await start_step(context, project_id, kind)
    return RedirectResponse(f"/dpias/{document_id}", status_code=303)


@user_page
async def people(context: UserRequest) -> Response:
    """Add a person, or an organisation, to every document of the project (owners)."""
    request, runtime, user = context.request, context.runtime, context.user
    project_id = request.path_params["project_id"]
    data = await form(request)
    action = field(data, "action", 30)
    values: dict[str, Any] = {k: field(data, k, 254) for k in data if k != "csrftoken"}
    adding = runtime.usecases.project_people
    try:
        if action == "add-person":
            added = await adding.add_person(
                user,
                project_id,
                field(data, "email", 254),
                field(data, "role", 30),
                field(data, "name", 200),
            )
            done = wording.project_person_added(field(data, "email", 254).strip(), len(added.added))
        elif action == "add-party":
            organisation = field(data, "organisation", 30)
            added = await adding.add_party(
                user,
                project_id,
                field(data, "party_role", 30),
                organisation_id=whole_number(organisation, "The organisation")
                if organisation
                else None,
                name=field(data, "party_name", 200),
            )
            name = field(data, "party_name", 200).strip() or _organisation_name(
                await runtime.dpias.organisations(), organisation
            )
            done = wording.project_party_added(name, len(added.added))
        else:
            raise InvalidInput("This page has no such action: reload it and try again")
    except DomainError as error:
        await runtime.projects.view(user, project_id)  # an outsider gets 404, not the form
        return await _project_page(
            context,
            status=http_status_for(error),
            error=str(error),
            error_field="person-email" if action == "add-person" else "party-organisation",
            values=values,
        )
    return RedirectResponse(
        f"/projects/{project_id}?done={quote(done[:200])}#people", status_code=303
    )


def _organisation_name(organisations: list[tuple[int, str, str]], raw: str) -> str:
    return next((name for id_, _, name in organisations if str(id_) == raw), raw)


routes = [
    Route("/projects", dashboard),
    Route("/projects/new", new_project, methods=["GET", "POST"]),
    Route("/projects/{project_id}", project_page),
    Route("/projects/{project_id}/steps", start, methods=["POST"]),
    Route("/projects/{project_id}/people", people, methods=["POST"]),
]
