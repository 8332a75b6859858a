"""Notifications in the app, and one-click unsubscribe from email (no sign-in needed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from server.domain import wording
from server.domain.access import Role
from server.domain.errors import DomainError
from server.domain.mailprefs import MailMode
from server.domain.templates import load_template
from server.web.auth import current_user, runtime_of
from server.web.context import UserRequest, user_page
from server.web.errors import http_status_for
from server.web.pages import editor_config
from server.web.rendering import field, form, page, render_error


@user_page
async def notifications(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    if request.method == "POST":
        await runtime.notifications.inbox.mark_all_read(user)
        return RedirectResponse("/notifications", status_code=303)
    items = await runtime.notifications.inbox.feed(user)
    overall, per_dpia = await runtime.notifications.inbox.preferences(user)
    return page(
        request,
        "notifications.html",
        items=items,
        overall=overall,
        per_dpia=per_dpia,
        modes=list(MailMode),
        watching=await runtime.notifications.inbox.watching(user),
        sections=load_template().sections,
        saved=request.query_params.get("saved") == "1",
    )


@user_page
async def watch_sections(context: UserRequest) -> Response:
    """The form of checkboxes: every section ticked is watched, every other unwatched."""
    data = await form(context.request)
    member = await context.runtime.usecases.participants.member(
        context.user, field(data, "dpia", 100)
    )
    ticked = set(data.getlist("watch"))
    for section in load_template(
        member.access.template_id, member.access.template_version
    ).section_ids():
        await context.runtime.notifications.inbox.set_watch(
            member.access.participant_id, section, section in ticked
        )
    return RedirectResponse("/notifications?saved=1", status_code=303)


@user_page
async def preferences(context: UserRequest) -> Response:
    inbox, user = context.runtime.notifications.inbox, context.user
    data = await form(context.request)
    await inbox.set_preference(user, None, field(data, "overall", 20))
    for key in data:
        if key.startswith("dpia:"):
            await inbox.set_preference(user, key[5:], field(data, key, 20))
    return RedirectResponse("/notifications?saved=1", status_code=303)


KEEPALIVE_SECONDS = 25.0


async def stream(request: Request) -> Response:
    """Server-Sent Events: the unread count now, and again whenever it may have changed."""
    user = await current_user(request)
    if user is None:
        return JSONResponse({"error": "Sign in first"}, status_code=401)
    service = runtime_of(request).notifications
    queue = service.listen(user.id)

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                unread = await service.inbox.unread(user)
                yield f"event: unread\ndata: {json.dumps({'unread': unread})}\n\n"
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        await queue.get()
                except TimeoutError:
                    yield ": still here\n\n"
        finally:
            service.unlisten(user.id, queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def unsubscribe(request: Request) -> Response:
    """GET shows a button; POST (the button, or a mail client's one-click) unsubscribes."""
    runtime = runtime_of(request)
    token = request.path_params["token"]
    if request.method == "GET":
        return page(request, "unsubscribe.html", token=token, done=False, title="")
    try:
        title = await runtime.notifications.inbox.unsubscribe(token)
    except DomainError as error:
        return render_error(request, error)
    return page(request, "unsubscribe.html", token=token, done=True, title=title)


async def read_only(request: Request) -> Response:
    """A personal link from an email: the DPIA, read-only, for someone without an account."""
    runtime = runtime_of(request)
    try:
        participant, dpia, token = await _reader_token(request)
    except DomainError as error:
        return render_error(request, error)
    config = editor_config(
        request,
        dpia_id=dpia.id,
        title=dpia.title,
        role=Role.VIEWER,
        user_id=f"participant:{participant.id}",
        user_name=participant.name,
        token=token,
        template_id=dpia.template_id,
        template_version=dpia.template_version,
    )
    # The link reads as a viewer whatever the role: say the role they take part as, and
    # how they take part from here (replying to the email), not "viewer".
    config["roleNote"] = wording.reading_as(participant.role, editable=False, locked=False)
    config["tokenUrl"] = f"/r/{request.path_params['token']}/token"
    config["tokenSeconds"] = runtime.settings.person_token_seconds
    return page(request, "editor.html", access=dpia, config=config, reader=True)


async def read_only_token(request: Request) -> Response:
    """A fresh, short-lived WebSocket token for a read-only link's page (the page renews
    it; a link whose person no longer takes part gets none)."""
    try:
        _, _, token = await _reader_token(request)
    except DomainError as error:
        return JSONResponse({"error": str(error)}, status_code=http_status_for(error))
    return JSONResponse({"token": token}, headers={"Cache-Control": "no-store"})


async def _reader_token(request: Request) -> tuple[Any, Any, str]:
    runtime = runtime_of(request)
    participant, dpia, seconds = await runtime.notifications.mail.reader(
        request.path_params["token"]
    )
    ttl = min(seconds, runtime.settings.person_token_seconds)
    token = runtime.access.issue_token(f"participant:{participant.id}", dpia.id, Role.VIEWER, ttl)
    return participant, dpia, token


routes = [
    Route("/notifications", notifications, methods=["GET", "POST"]),
    Route("/notifications/preferences", preferences, methods=["POST"]),
    Route("/notifications/stream", stream),
    Route("/notifications/watch", watch_sections, methods=["POST"]),
    Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
    Route("/r/{token}", read_only),
    Route("/r/{token}/token", read_only_token),
]
