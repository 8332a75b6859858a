"""The DPIA's inbound mail, for its owners: what became of every email reply, the replies
held for a decision, addresses that bounce; and attachments, served only as downloads."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import AccessDenied, DomainError, InvalidInput
from server.domain.inputs import whole_number
from server.web.auth import runtime_of
from server.web.pages import field, form, page, render_error, signed_in


async def inbound(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        access = await runtime.dpias.access(user, dpia_id)
        if not access.role.can_manage:
            raise AccessDenied("only the DPIA's owners see its inbound mail")
        if request.method == "POST":
            data = await form(request)
            action = field(data, "action")
            target = whole_number(field(data, "id"), "The message or participant number")
            if action == "release":
                await runtime.inbound.release(dpia_id, target, user.name)
            elif action == "discard":
                await runtime.inbound.discard(dpia_id, target, user.name)
            elif action == "resume":
                await runtime.inbound.resume_mail(dpia_id, target)
            else:
                raise InvalidInput("unknown action")
            return RedirectResponse(f"/dpias/{dpia_id}/inbound", status_code=303)
        messages = await runtime.inbound.for_dpia(dpia_id)
        health = await runtime.inbound.mail_health(dpia_id)
        people = {p.id: p for p in await runtime.dpias.participants(user, dpia_id)}
    except DomainError as error:
        return render_error(request, error)
    return page(
        request,
        "inbound.html",
        access=access,
        messages=messages,
        health=[(people.get(pid), row) for pid, row in sorted(health.items())],
        people=people,
    )


async def attachment(request: Request) -> Response:
    """A file that came with an email reply: participants only, always as a download."""
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    number = request.path_params["attachment_id"]
    try:
        await runtime.dpias.access(user, dpia_id)
        row = await runtime.inbound.attachment(
            dpia_id, whole_number(number, "The attachment number in the address")
        )
    except DomainError as error:
        return render_error(request, error)
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
