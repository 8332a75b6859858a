"""JSON API: comments, written into the document server-side.

Browsers authenticate with the session cookie (and the CSRF header); API and tooling
clients with ``Authorization: Bearer <token>`` from ``opendpia token``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import logs
from server.domain.access import Channel
from server.domain.comments import NewComment, check_comment
from server.domain.dpias import locked_message
from server.domain.errors import (
    AccessDenied,
    DomainError,
    DpiaLocked,
    InvalidInput,
    InvalidToken,
)
from server.domain.templates import load_template
from server.web.auth import current_user, runtime_of
from server.web.errors import http_status_for

MAX_JSON = 64 * 1024


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_json(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("send a JSON body with Content-Type: application/json")
    body = await request.body()
    if len(body) > MAX_JSON:
        raise InvalidInput(f"the body is larger than {MAX_JSON // 1024} KiB")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    return value


async def post_comment(request: Request) -> Response:
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    logs.document_id.set(dpia_id[:100])
    try:
        data = await read_json(request)
        section = _text(data, "section") or ""
        field = _text(data, "field", required=False)
        text = check_comment(load_template(), section, field, _text(data, "text") or "")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            grant = runtime.access_token(bearer[7:].strip(), dpia_id)
            if not grant.role.can_comment:
                raise AccessDenied("your role on this DPIA cannot comment")
            comment = NewComment(
                section, field, text, None, grant.principal, Channel.API.value, grant.principal
            )
        else:
            user = await current_user(request)
            if user is None:
                raise InvalidToken("sign in, or send Authorization: Bearer <token>")
            access = await runtime.dpias.access(user, dpia_id)
            if not access.role.can_comment:
                raise AccessDenied("viewers cannot comment; ask an owner for another role")
            if access.status.is_locked:
                raise DpiaLocked(locked_message(access.status))
            comment = NewComment(
                section,
                field,
                text,
                access.participant_id,
                user.name,
                Channel.BROWSER.value,
                f"user:{user.id}",
            )
        comment_id, _ = await runtime.editing.add_comment(
            dpia_id, comment, origin=f"api:comment:{comment.actor}"
        )
        await runtime.notifications.record_comment(
            dpia_id,
            section=section,
            text=text,
            author=comment.author_name,
            actor=comment.actor,
            channel=comment.channel,
        )
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"id": comment_id}, status_code=201)


async def watch(request: Request) -> Response:
    """``{"section": "...", "watching": true|false}``: hear about a section, or not."""
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        data = await read_json(request)
        section = _text(data, "section") or ""
        watching = data.get("watching")
        if not isinstance(watching, bool):
            raise InvalidInput("watching must be true or false")
        if section not in load_template().section_ids():
            raise InvalidInput(f"{section[:40]!r} is not a section of this DPIA")
        user = await current_user(request)
        if user is None:
            raise InvalidToken("sign in first")
        access = await runtime.dpias.access(user, dpia_id)
        await runtime.notifications.inbox.set_watch(access.participant_id, section, watching)
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"section": section, "watching": watching})


async def reviewer(request: Request) -> Response:
    """Owners: ``{"section", "participant": id, "assigned": true|false}``."""
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        data = await read_json(request)
        participant = data.get("participant")
        assigned = data.get("assigned")
        if not isinstance(participant, int) or not isinstance(assigned, bool):
            raise InvalidInput("participant must be an id and assigned true or false")
        user = await current_user(request)
        if user is None:
            raise InvalidToken("sign in first")
        section = _text(data, "section") or ""
        await runtime.dpias.set_reviewer(user, dpia_id, section, participant, assigned)
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"section": section, "participant": participant, "assigned": assigned})


routes = [
    Route("/api/dpias/{dpia_id}/comments", post_comment, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/watch", watch, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/reviewers", reviewer, methods=["POST"]),
]
