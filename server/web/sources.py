"""The sources page of a drafted document (the ISA): each field drafted from the DPIA, its
source, and for a changed source the difference, who should look and a Confirm button."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.web.context import DpiaRequest, dpia_page
from server.web.rendering import field, form, page


@dpia_page
async def sources_page(context: DpiaRequest) -> Response:
    projects = context.runtime.usecases.projects
    if context.request.method == "POST":
        data = await form(context.request)
        await projects.confirm_source(context.member, field(data, "field", 200))
        return RedirectResponse(f"/dpias/{context.dpia_id}/sources?confirmed=1", status_code=303)
    sources = await projects.sources(context.member)
    return page(
        context.request,
        "sources.html",
        access=context.access,
        sources=sources,
        can_confirm=context.access.role.can_write,
        confirmed=context.request.query_params.get("confirmed") == "1",
    )


@dpia_page
async def prefill(context: DpiaRequest) -> Response:
    """Fill the DPIA's empty fields from steps 1-3 (a form on the editor page)."""
    await form(context.request)  # the CSRF token is checked by the middleware
    written = await context.runtime.usecases.projects.fill_empty_fields(context.member)
    return RedirectResponse(f"/dpias/{context.dpia_id}?filled={len(written)}", status_code=303)


routes = [
    Route("/dpias/{dpia_id}/sources", sources_page, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/prefill", prefill, methods=["POST"]),
]
