"""The template library pages: an organisation's own templates (make one from another, edit
its draft as JSON, publish a version), others' published templates (adopt one), and a
DPIA's move to the newest version of its template (what changes, then confirm).

The organisation pages are administration pages (``admin.admin_page``): its administrators
and owners, and deployment administrators; anyone else gets 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import DomainError, InvalidInput
from server.domain.inputs import whole_number
from server.services.admin_records import OrganisationView
from server.web.admin import AdminRequest, admin_page
from server.web.context import DpiaRequest, dpia_page
from server.web.errors import http_status_for
from server.web.rendering import field, page

MAX_TEMPLATE_FORM = 600 * 1024  # the JSON of a template, as its editor posts it


async def _big_form(request: Request) -> dict[str, str]:
    data = await request.form(max_files=0, max_fields=10, max_part_size=MAX_TEMPLATE_FORM)
    return {key: field(data, key, MAX_TEMPLATE_FORM) for key in data}


async def _organisation(context: AdminRequest) -> OrganisationView:
    runtime, actor = context.runtime, context.actor
    return await runtime.administration.organisation(actor, context.request.path_params["code"])


def _who(context: AdminRequest) -> tuple[str, str]:
    """The administrator acting, and from where, as the audit chain records them."""
    return context.actor.label, context.actor.channel.value


@admin_page
async def library(context: AdminRequest) -> Response:
    """The organisation's templates, others' published ones, and making a new one."""
    request, runtime = context.request, context.runtime
    org = await _organisation(context)
    templates = runtime.dpias.templates
    values = {"title": "", "source": "uk-dpia"}
    error, error_field, status = None, "template-title", 200
    if request.method == "POST":
        data = await _big_form(request)
        action = data.get("action", "")
        try:
            if action == "adopt":
                await templates.adopt(org.id, data.get("template", "")[:50], *_who(context))
                return RedirectResponse(
                    f"/admin/organisations/{org.code}/templates?adopted=1", status_code=303
                )
            values = {"title": data.get("title", ""), "source": data.get("source", "")}
            made = await templates.start(
                org.id, values["source"][:50], values["title"], *_who(context)
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
            error_field = "template-source" if "template" in error.lower() else "template-title"
        else:
            return RedirectResponse(
                f"/admin/organisations/{org.code}/templates/{made}", status_code=303
            )
    return page(
        request,
        "admin_templates.html",
        status,
        organisation=org,
        own=await templates.own(org.id),
        elsewhere=await templates.published_elsewhere(org.id),
        choices=await templates.choices([org.id]),
        values=values,
        error=error,
        error_field=error_field,
        adopted=request.query_params.get("adopted") == "1",
        deployment_admin=context.actor.standing.deployment_admin,
    )


@admin_page
async def template(context: AdminRequest) -> Response:
    """One of the organisation's templates: its draft as JSON (save, publish), or its
    newest published version (open a draft of the next version)."""
    request, runtime = context.request, context.runtime
    org = await _organisation(context)
    templates = runtime.dpias.templates
    template_id = request.path_params["template_id"][:50]
    base = f"/admin/organisations/{org.code}/templates/{template_id}"
    error, status, text = None, 200, None
    if request.method == "POST":
        data = await _big_form(request)
        action = data.get("action", "")
        try:
            if action == "edit":
                await templates.draft(org.id, template_id, *_who(context))
                return RedirectResponse(base, status_code=303)
            if action == "publish":
                version = await templates.publish(org.id, template_id, *_who(context))
                return RedirectResponse(f"{base}?published={version}", status_code=303)
            text = data.get("content", "")
            await templates.save(org.id, template_id, text, *_who(context))
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(f"{base}?saved=1", status_code=303)
    current, is_draft = await templates.newest(org.id, template_id)
    return page(
        request,
        "admin_template.html",
        status,
        organisation=org,
        template=current,
        is_draft=is_draft,
        text=text if text is not None else current.text,
        error=error,
        saved=request.query_params.get("saved") == "1",
        published=request.query_params.get("published", "")[:6],
        deployment_admin=context.actor.standing.deployment_admin,
    )


@dpia_page
async def dpia_template(context: DpiaRequest) -> Response:
    """The DPIA's template and version; for its owners, what moving to the newest version
    changes, and the move once they confirm."""
    request, runtime = context.request, context.runtime
    moves = runtime.usecases.templates
    error, status = None, 200
    if request.method == "POST":
        data = await _big_form(request)
        try:
            if data.get("confirm") != "yes":
                raise InvalidInput("Confirm that you want to move this DPIA to the new version")
            version = whole_number(data.get("version", ""), "The template version")
            await moves.move(context.member, version)
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(f"/dpias/{context.dpia_id}/template?moved=1", status_code=303)
    plan = await moves.preview(context.member)
    return page(
        request,
        "dpia_template.html",
        status,
        access=context.access,
        plan=plan,
        can_move=context.access.role.can_manage and not context.access.status.is_locked,
        moved=request.query_params.get("moved") == "1",
        error=error,
    )


routes = [
    Route("/admin/organisations/{code}/templates", library, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}/templates/{template_id}", template, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/template", dpia_template, methods=["GET", "POST"]),
]
