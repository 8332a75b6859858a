"""A project's sign-off by every party, its reviewing body's endorsement, and the library of
endorsed agreements that other organisations adopt (issue 16; docs/projects.md).

Forms only (no JavaScript needed). A form may say which party and role a person signs for
(``signing_as``: "<organisation id>:<capacity>"), and the service checks it against their
memberships; nothing the form says is trusted.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain import wording
from server.domain.errors import DocumentNotFound, DomainError, InvalidInput
from server.domain.inputs import whole_number
from server.domain.projects import DocumentKind
from server.services.history import FieldChange
from server.web.context import UserRequest, user_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page

ENDORSED_PATH = "/agreements/endorsed"


def signoff_path(project_id: str) -> str:
    return f"/projects/{quote(project_id)}/sign-off"


@user_page
async def project_signoff_page(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    project_id = request.path_params["project_id"]
    error, error_field, status = None, "", 200
    if request.method == "POST":
        data = await form(request)
        action = field(data, "action", 20)
        try:
            message = await _act(context, project_id, action, data)
        except DomainError as problem:
            error, status = str(problem), http_status_for(problem)
            error_field = _field_of(action, field(data, "document", 100), error)
        else:
            return RedirectResponse(
                f"{signoff_path(project_id)}?done={quote(message[:160])}", status_code=303
            )
    signoffs = await runtime.parties.status(user, project_id)
    changes: list[FieldChange] | None = None
    isa = signoffs.document(DocumentKind.ISA)
    if isa is not None:
        changes = await runtime.adoption.changes_from_endorsed(user, isa.document_id)
    return page(
        request,
        "project_signoff.html",
        status,
        s=signoffs,
        changes=changes,
        bodies=await runtime.parties.reviewing_bodies() if signoffs.can_remind else [],
        message=request.query_params.get("done", "")[:160] if status == 200 else "",
        error=error,
        error_field=error_field,
    )


async def _act(context: UserRequest, project_id: str, action: str, data: FormData) -> str:
    """One action of the page; what to say once done."""
    runtime, user = context.runtime, context.user
    if action == "remind":
        reminded = await runtime.parties.remind(user, project_id)
        if not reminded.sent and reminded.not_due:
            return wording.REMINDED_TODAY
        return f"Reminded {len(reminded.sent)} signator{'y' if len(reminded.sent) == 1 else 'ies'}"
    if action == "invite_body":
        body = whole_number(field(data, "organisation", 20), "The reviewing body")
        await runtime.parties.invite_reviewing_body(user, project_id, body)
        return "Reviewing body invited"
    document = await _document_of(context, project_id, field(data, "document", 100))
    if action == "sign":
        organisation, capacity = _signing_as(field(data, "signing_as", 60))
        await runtime.usecases.parties.sign(
            user,
            document,
            decision=field(data, "decision", 30),
            organisation_id=organisation,
            capacity=capacity,
            reasons=field(data, "reasons", 5000),
        )
        return f"Signed {document}"
    if action == "endorse":
        await runtime.usecases.parties.endorse(
            user,
            document,
            decision=field(data, "decision", 30),
            reasons=field(data, "reasons", 5000),
        )
        return f"Endorsement decision recorded on {document}"
    raise InvalidInput("Choose what to do: sign, endorse or remind")


async def _document_of(context: UserRequest, project_id: str, document_id: str) -> str:
    """The document a form names, if it is one of this project's (never another's)."""
    if await context.runtime.projects.project_of(document_id) != project_id:
        raise DocumentNotFound("There is no such document in this project")
    return document_id


def _signing_as(raw: str) -> tuple[int | None, str]:
    """A form's "<organisation id>:<capacity>" (either may be missing): what the person
    says they sign for, checked by the service."""
    organisation, _, capacity = raw.partition(":")
    if not organisation:
        return None, capacity
    return whole_number(organisation, "The party you sign for"), capacity


def _field_of(action: str, document: str, error: str) -> str:
    """The id of the field an error is about, for the error summary's link."""
    if action == "sign":
        return f"{'reasons' if 'reasons' in error else 'signing-as'}-{document}"
    if action == "endorse":
        return f"endorse-reasons-{document}"
    if action == "invite_body":
        return "reviewing-body"
    return "remind"


@user_page
async def endorsed_page(context: UserRequest) -> Response:
    """Every endorsed agreement, for every signed-in person (decision: endorsed agreements
    are meant to be reused across the deployment)."""
    return await _library(context)


async def _library(context: UserRequest, error: str | None = None, status: int = 200) -> Response:
    runtime, user = context.runtime, context.user
    names = {i: n for i, _, n in await runtime.dpias.organisations()}
    return page(
        context.request,
        "endorsed_agreements.html",
        status,
        agreements=await runtime.adoption.endorsed(),
        organisations=[(i, names.get(i, str(i))) for i in user.organisation_ids],
        error=error,
        error_field="adopt-1",
    )


@user_page
async def adopt(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    data = await form(request)
    try:
        raw = field(data, "organisation", 20)
        organisation = (
            whole_number(raw, "The adopting organisation")
            if raw
            else (user.organisation_ids[0] if user.organisation_ids else 0)
        )
        new_id = await runtime.adoption.adopt(user, request.path_params["project_id"], organisation)
    except DomainError as problem:
        return await _library(context, str(problem), http_status_for(problem))
    return RedirectResponse(
        f"{signoff_path(new_id)}?done={quote('Adopted as ' + new_id)}", status_code=303
    )


routes = [
    Route("/projects/{project_id}/sign-off", project_signoff_page, methods=["GET", "POST"]),
    Route(ENDORSED_PATH, endorsed_page),
    Route(ENDORSED_PATH + "/{project_id}/adopt", adopt, methods=["POST"]),
]
