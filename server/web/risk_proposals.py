"""The proposed risks page of a DPIA: the template's catalogue risks that its answers make
relevant, each accepted into the register or dismissed with a reason, and what was decided."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.catalogue import ACCEPTED, DISMISSED, PROPOSED
from server.domain.errors import DomainError
from server.domain.risk import RiskMatrix
from server.web.context import DpiaRequest, dpia_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page

PATH = "/dpias/{dpia_id}/risks/proposed"


@dpia_page
async def proposed_risks(context: DpiaRequest) -> Response:
    usecase = context.runtime.usecases.risk_proposals
    request, dpia_id = context.request, context.dpia_id
    error, status, failed = None, 200, ""
    if request.method == "POST":
        data = await form(request)
        risk_id = field(data, "risk", 100)
        try:
            if field(data, "action", 20) == "accept":
                ref = await usecase.accept(context.member, risk_id)
                return RedirectResponse(
                    f"/dpias/{dpia_id}/risks/proposed?accepted={ref}", status_code=303
                )
            await usecase.dismiss(context.member, risk_id, field(data, "reason", 4000))
            return RedirectResponse(f"/dpias/{dpia_id}/risks/proposed?dismissed=1", 303)
        except DomainError as failure:
            error, status, failed = str(failure), http_status_for(failure), risk_id
    found = await usecase.of(context.member)
    template = await context.runtime.history.template_of(dpia_id)
    matrix = RiskMatrix.from_template(template.content) if found else None
    accepted = request.query_params.get("accepted", "")[:10]
    return page(
        request,
        "risk_proposals.html",
        status,
        access=context.access,
        proposed=[p for p in found if p.state == PROPOSED],
        decided=[p for p in found if p.state in (ACCEPTED, DISMISSED)],
        has_catalogue=bool(template.content.get("risk_catalogue")),
        rate=(lambda risk: matrix.rate(risk.likelihood, risk.severity)) if matrix else None,
        can_decide=context.access.role.can_write and not context.access.status.is_locked,
        error=error,
        failed=failed,
        accepted=accepted if accepted[:1].isalpha() and accepted[1:].isdigit() else "",
        dismissed=request.query_params.get("dismissed") == "1",
    )


routes = [Route(PATH, proposed_risks, methods=["GET", "POST"])]
