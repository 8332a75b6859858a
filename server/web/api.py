"""JSON API: comments, their replies and resolving, written into the document server-side;
watching; reviewers.

Browsers authenticate with the session cookie (and the CSRF header); API and tooling
clients post, reply and resolve with ``Authorization: Bearer <token>`` from
``opendpia token``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import logs
from server.domain.errors import InvalidInput
from server.domain.inputs import whole_number
from server.domain.templates import load_template
from server.usecases.comments import Commenter
from server.web.auth import runtime_of
from server.web.context import DpiaRequest, api_user, dpia_api, dpia_request, json_api
from server.web.rendering import json_value, read_json


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"The field {key[:30]!r} must be a string")
    return value


async def _commenter(request: Request, dpia_id: str) -> Commenter:
    """An API token's grant, or the signed-in participant (session cookie and CSRF header)."""
    logs.document_id.set(dpia_id[:100])
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return await runtime_of(request).access_token(bearer[7:].strip(), dpia_id)
    user = await api_user(request, "Sign in, or send Authorization: Bearer <token>")
    return (await dpia_request(request, user)).member


@json_api
async def post_comment(request: Request) -> Response:
    """``{"section", "field"?, "text"}`` from a signed-in participant or an API token."""
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    data = await read_json(request)
    by = await _commenter(request, dpia_id)
    posted = await runtime.usecases.comments.post(
        dpia_id,
        by,
        section=_text(data, "section") or "",
        field=_text(data, "field", required=False),
        text=_text(data, "text") or "",
    )
    return JSONResponse({"id": posted.id}, status_code=201)


@json_api
async def post_reply(request: Request) -> Response:
    """``{"text"}``: reply to the comment of the path."""
    dpia_id = request.path_params["dpia_id"]
    comment_id = request.path_params["comment_id"]
    data = await read_json(request)
    by = await _commenter(request, dpia_id)
    await runtime_of(request).usecases.comments.reply(
        dpia_id, by, comment_id, _text(data, "text") or ""
    )
    return JSONResponse({"comment": comment_id}, status_code=201)


@json_api
async def resolve_comment(request: Request) -> Response:
    """``{"resolved": true|false}``: resolve the comment of the path, or open it again."""
    dpia_id = request.path_params["dpia_id"]
    comment_id = request.path_params["comment_id"]
    data = await read_json(request)
    resolved = json_value(data, "resolved", bool, "resolved must be true or false")
    by = await _commenter(request, dpia_id)
    comments = runtime_of(request).usecases.comments
    if resolved:
        await comments.resolve(dpia_id, by, comment_id)
    else:
        await comments.reopen(dpia_id, by, comment_id)
    return JSONResponse({"comment": comment_id, "resolved": resolved})


@dpia_api
async def watch(context: DpiaRequest) -> Response:
    """``{"section": "...", "watching": true|false}``: hear about a section, or not."""
    data = await read_json(context.request)
    section = _text(data, "section") or ""
    watching = json_value(data, "watching", bool, "watching must be true or false")
    if (
        section
        not in load_template(
            context.access.template_id, context.access.template_version
        ).section_ids()
    ):
        raise InvalidInput(f"This DPIA has no section {section[:40]!r}")
    await context.runtime.notifications.inbox.set_watch(
        context.access.participant_id, section, watching
    )
    return JSONResponse({"section": section, "watching": watching})


@dpia_api
async def reviewer(context: DpiaRequest) -> Response:
    """Owners: ``{"section", "participant": id, "assigned": true|false}``."""
    data = await read_json(context.request)
    wrong = "participant must be an id and assigned true or false"
    participant = whole_number(json_value(data, "participant", int, wrong), "The participant")
    assigned = json_value(data, "assigned", bool, wrong)
    section = _text(data, "section") or ""
    await context.runtime.usecases.participants.set_reviewer(
        context.member, section, participant, assigned
    )
    return JSONResponse({"section": section, "participant": participant, "assigned": assigned})


routes = [
    Route("/api/dpias/{dpia_id}/comments", post_comment, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/comments/{comment_id}/replies", post_reply, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/comments/{comment_id}/resolve", resolve_comment, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/watch", watch, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/reviewers", reviewer, methods=["POST"]),
]
