"""Notifications in the app, and one-click unsubscribe from email (no sign-in needed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.errors import DomainError
from server.web.auth import runtime_of
from server.web.pages import page, render_error, signed_in


async def notifications(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    if request.method == "POST":
        await runtime.notifications.mark_all_read(user)
        return RedirectResponse("/notifications", status_code=303)
    items = await runtime.notifications.feed(user)
    return page(request, "notifications.html", items=items)


async def unsubscribe(request: Request) -> Response:
    """GET shows a button; POST (the button, or a mail client's one-click) unsubscribes."""
    runtime = runtime_of(request)
    token = request.path_params["token"]
    if request.method == "GET":
        return page(request, "unsubscribe.html", token=token, done=False, title="")
    try:
        title = await runtime.notifications.unsubscribe(token)
    except DomainError as error:
        return render_error(request, error)
    return page(request, "unsubscribe.html", token=token, done=True, title=title)


routes = [
    Route("/notifications", notifications, methods=["GET", "POST"]),
    Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
]
