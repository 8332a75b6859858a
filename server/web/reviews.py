"""The review cycle of an approved document (issue 17; docs/reviews.md): its schedule,
"Start review" (a new version; the approved one stays in force), and raising a review
trigger. Each action is one use case (``server.usecases.reviews``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.dpias import DpiaStatus
from server.domain.errors import DomainError, InvalidInput
from server.domain.reviews import DATE_REASON, SCHEDULED, STARTERS, TRIGGERABLE
from server.web.context import DpiaRequest, dpia_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page


async def review_context(context: DpiaRequest) -> dict[str, Any]:
    """What a document's pages show of its review cycle (the workflow page and this one)."""
    reviews, dpia_id = context.runtime.reviews, context.dpia_id
    schedule = await reviews.schedule(dpia_id)
    status, role = context.access.status, context.access.role
    return {
        "schedule": schedule,
        "today": reviews.clock().date(),
        "reminder_days": reviews.offsets,
        # Under review: where the review happens. Superseded: what replaced it.
        "successor": (
            await reviews.successor(dpia_id) if status is DpiaStatus.UNDER_REVIEW else None
        ),
        "superseded": (
            await reviews.superseded_by(dpia_id) if status is DpiaStatus.SUPERSEDED else None
        ),
        "in_force_version": await reviews.in_force_version(dpia_id),
        "may_start": role in STARTERS and status in SCHEDULED,
        "may_raise": schedule.cycle is not None and status in TRIGGERABLE,
    }


@dpia_page
async def review_page(context: DpiaRequest) -> Response:
    request, runtime, dpia_id = context.request, context.runtime, context.dpia_id
    error, error_field, status = None, "trigger", 200
    values: dict[str, str] = {}
    if request.method == "POST":
        data = await form(request)
        values = {k: field(data, k, 5000) for k in ("action", "reason", "trigger", "what")}
        try:
            if values["action"] == "start":
                error_field = "reason"
                new_id = await runtime.usecases.reviews.start(context.member, values["reason"])
                done = f"Review started: {new_id} is the new version; {dpia_id} stays in force."
                return RedirectResponse(
                    f"/dpias/{new_id}/workflow?done={quote(done[:120])}", status_code=303
                )
            if values["action"] == "trigger":
                label = await runtime.usecases.reviews.raise_trigger(
                    context.member, values["trigger"], values["what"]
                )
                done = f"Review trigger raised: {label}. The owners and the DPO are told."
                return RedirectResponse(
                    f"/dpias/{dpia_id}/review?done={quote(done[:120])}", status_code=303
                )
            raise InvalidInput("This page has no such action: reload it and try again")
        except DomainError as problem:
            error, status = str(problem), http_status_for(problem)
    return page(
        request,
        "review_cycle.html",
        status,
        dpia_id=dpia_id,
        title=context.access.title,
        status=context.access.status,
        error=error,
        error_field=error_field,
        values=values,
        message=request.query_params.get("done", "")[:120],
        triggers=await runtime.reviews.triggers(dpia_id),
        date_reason=DATE_REASON,
        **await review_context(context),
    )


routes = [Route("/dpias/{dpia_id}/review", review_page, methods=["GET", "POST"])]
