"""The DPIA's inbound mail, for its owners: what became of every email reply, the replies
held for a decision, addresses that bounce; and attachments, served only as downloads."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import InvalidInput
from server.domain.inputs import whole_number
from server.web.context import DpiaRequest, dpia_page
from server.web.rendering import field, form, page


@dpia_page
async def inbound(context: DpiaRequest) -> Response:
    request, mail, member = context.request, context.runtime.usecases.inbound, context.member
    if request.method == "POST":
        data = await form(request)
        action = field(data, "action")
        target = whole_number(field(data, "id"), "The message or participant number")
        if action == "release":
            await mail.release(member, target)
        elif action == "discard":
            await mail.discard(member, target)
        elif action == "resume":
            await mail.resume_mail(member, target)
        else:
            raise InvalidInput("Unknown action")
        return RedirectResponse(f"/dpias/{context.dpia_id}/inbound", status_code=303)
    view = await mail.view(member)
    return page(
        request,
        "inbound.html",
        access=context.access,
        messages=view.messages,
        health=[(view.people.get(pid), row) for pid, row in sorted(view.health.items())],
        people=view.people,
        sections=(await context.runtime.history.template_of(context.dpia_id)).sections,
    )


@dpia_page
async def attachment(context: DpiaRequest) -> Response:
    """A file that came with an email reply: participants only, always as a download."""
    number = whole_number(
        context.request.path_params["attachment_id"], "The attachment number in the address"
    )
    row = await context.runtime.inbound.attachment(context.dpia_id, number)
    return Response(
        row.data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


routes = [
    Route("/dpias/{dpia_id}/inbound", inbound, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/attachments/{attachment_id}", attachment),
]
