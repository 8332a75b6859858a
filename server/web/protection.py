"""The data protection pages (decisions 92-95): deleting a DPIA, an organisation's retention
period, erasing a person, a subject access export, and the tool's privacy notice.

Each asks before it acts: a POST without ``confirm=yes`` changes nothing and shows the
question again. Who may do what is the use case's and the domain's to decide.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import AccessDenied, DomainError
from server.domain.people import normalise_email
from server.domain.protection import check_retention_months
from server.usecases.protection import ConfirmationNeeded
from server.web.auth import current_user, runtime_of
from server.web.context import DpiaRequest, UserRequest, dpia_page, user_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page


@dpia_page
async def delete_dpia(context: DpiaRequest) -> Response:
    request, protection = context.request, context.runtime.usecases.protection
    rule = await protection.deletion_rule(context.user, context.dpia_id)
    view = await protection.retention.view(context.dpia_id)
    error, status = None, 200
    if request.method == "POST":
        data = await form(request)
        try:
            await protection.delete(
                context.user, context.dpia_id, confirmed=field(data, "confirm") == "yes"
            )
        except ConfirmationNeeded:
            error, status = "Nothing was deleted: confirm by choosing “Yes, delete”.", 400
        else:
            return RedirectResponse(f"/dpias?deleted={context.dpia_id}", status_code=303)
    return page(
        request,
        "delete_dpia.html",
        status,
        access=context.access,
        rule=rule.value,
        retention=view,
        error=error,
    )


async def _administered(context: UserRequest) -> list[tuple[int, str, str]]:
    """The organisations the user administers (id, code, name)."""
    runtime = context.runtime
    ids = set(await runtime.accounts.administered(context.user))
    return [o for o in await runtime.dpias.organisations() if o[0] in ids]


@user_page
async def retention_page(context: UserRequest) -> Response:
    request, retention = context.request, context.runtime.usecases.protection.retention
    code = request.path_params["code"].upper()[:12]
    organisation = next((o for o in await _administered(context) if o[1] == code), None)
    if organisation is None:
        raise AccessDenied("Only an administrator of this organisation can set its retention")
    error, status, raw = None, 200, ""
    if request.method == "POST":
        data = await form(request)
        raw = field(data, "months", 10)
        try:
            months = None if field(data, "default") == "yes" else check_retention_months(raw)
            await retention.set_months(
                code, months, actor=f"user:{context.user.id}", channel="browser"
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(request.url.path + "?saved=1", status_code=303)
    return page(
        request,
        "retention.html",
        status,
        organisation=organisation,
        months=await retention.months_of(code),
        default_months=retention.default_months,
        entered=raw,
        saved=request.query_params.get("saved") == "1",
        error=error,
    )


@user_page
async def erase_page(context: UserRequest) -> Response:
    request, protection = context.request, context.runtime.usecases.protection
    error, status, report, person = None, 200, None, None
    raw = request.query_params.get("email", "")[:254]
    if request.method == "POST":
        data = await form(request)
        raw = field(data, "email", 254)
        try:
            report = await protection.erase(
                context.user, raw, confirmed=field(data, "confirm") == "yes"
            )
        except ConfirmationNeeded as needed:
            error, status = f"Nothing changed. {needed}.", 400
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
    if raw and report is None:
        try:
            person = await protection.erasable(context.user, raw)
        except DomainError as failure:
            error, status = error or str(failure), status if error else http_status_for(failure)
    return page(request, "erase.html", status, email=raw, person=person, report=report, error=error)


@user_page
async def subject_access_page(context: UserRequest) -> Response:
    request, runtime = context.request, context.runtime
    raw = request.query_params.get("email", "")[:254]
    if not raw:
        return page(request, "subject_access.html", email="", error=None)
    try:
        standing = await runtime.administration.standing(context.user.id)
        administers = set(standing.administers)
        if not standing.administers_any():  # refused before looking: nobody learns who is known
            raise AccessDenied("Only an organisation's administrators can export what is held")
        email = normalise_email(raw)
        person = await runtime.usecases.protection.person(email)
        if not standing.deployment_admin and not administers & (
            person.facts.organisations | person.facts.dpia_organisations
        ):
            raise AccessDenied(
                "Only an administrator of their organisation, or of an organisation leading "
                "a DPIA they take part in, can export what is held about someone"
            )
        export = await runtime.usecases.protection.export_person(email)
    except DomainError as failure:
        return page(
            request,
            "subject_access.html",
            http_status_for(failure),
            email=raw,
            error=str(failure),
        )
    as_zip = request.query_params.get("format") == "zip"
    name = f"subject-access-{person.code}.{'zip' if as_zip else 'json'}"
    return Response(
        export.to_zip() if as_zip else export.to_json(),
        media_type="application/zip" if as_zip else "application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def privacy(request: Request) -> Response:
    """The tool's own privacy notice: readable without signing in."""
    runtime = runtime_of(request)
    request.state.user = await current_user(request)
    settings = runtime.settings
    return page(
        request,
        "privacy.html",
        controller=settings.controller_name,
        dpo=settings.dpo_contact,
        default_months=settings.default_retention_months,
    )


routes = [
    Route("/privacy", privacy),
    Route("/dpias/{dpia_id}/delete", delete_dpia, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}/retention", retention_page, methods=["GET", "POST"]),
    Route("/admin/erase", erase_page, methods=["GET", "POST"]),
    Route("/admin/subject-access", subject_access_page),
]
