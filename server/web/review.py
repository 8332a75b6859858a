"""Review, sign-off, history and exports: pages (forms, no JavaScript needed) and JSON API.

Every rule is the services' to check; handlers read input, call one service and render, or
map the domain error (``web.errors``). A status change also tells the loaded room, so an
approved DPIA turns read-only for connected browsers at once.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from server.domain.access import Channel
from server.domain.content import find_field, plain_text
from server.domain.dpias import DpiaStatus, locked_message
from server.domain.errors import AccessDenied, DomainError, DpiaLocked, InvalidInput, InvalidToken
from server.domain.workflow import (
    STEP7_KINDS,
    Decision,
    IgStep,
    SectionAction,
)
from server.services.accounts import CurrentUser
from server.web.api import error, read_json
from server.web.auth import current_user, runtime_of
from server.web.errors import http_status_for
from server.web.pages import field, form, page, render_error, signed_in

MAX_IMPORT = 4 * 1024 * 1024
IMPORT_PATH = "/dpias/import"


def checks_its_own_csrf(scope: Scope) -> bool:
    """The import form's multipart POST: ``import_page`` checks its CSRF token itself."""
    return bool(scope.get("path") == IMPORT_PATH and scope.get("method") == "POST")


async def _user(request: Request) -> CurrentUser:
    user = await current_user(request)
    if user is None:
        raise InvalidToken("sign in first")
    return user


def _seq(raw: str | None, name: str) -> int:
    if raw is None or not raw.isdigit():
        raise InvalidInput(f"{name} must be a version number")
    return int(raw)


async def _after_status(request: Request, dpia_id: str, status: DpiaStatus) -> None:
    runtime = runtime_of(request)
    runtime.rooms.set_read_only(dpia_id, locked_message(status) if status.is_locked else None)


# -- actions shared by the form and the JSON API ---------------------------------------------


async def _act(request: Request, user: CurrentUser, dpia_id: str, data: dict[str, str]) -> str:
    runtime = runtime_of(request)
    action = data.get("action", "")
    room = runtime.rooms.rooms.get(dpia_id)
    if room is not None:
        # What is signed, reviewed or gated is the committed document: let the last edits
        # the signer saw on screen (acknowledged or in the group-commit window) land first.
        await room.all_saved()
    if action == "status":
        status = await runtime.workflow.move(
            user, dpia_id, data.get("status", ""), data.get("reasons", "")
        )
        await _after_status(request, dpia_id, status)
        return f"The DPIA is now {status.label.lower()}."
    if action == "section":
        state = await runtime.workflow.section(
            user, dpia_id, data.get("section", ""), data.get("step", ""), data.get("reasons", "")
        )
        return f"{data.get('section')} is now {state.label.lower()}."
    if action == "ig_step":
        step = await runtime.workflow.set_ig_step(user, dpia_id, data.get("step", ""))
        return f"The project is at step {step.label}."
    if action == "sign":
        await runtime.signoffs.sign(
            user,
            dpia_id,
            kind=data.get("kind", ""),
            decision=data.get("decision", ""),
            target=data.get("target", ""),
            conditions=data.get("conditions", ""),
            reasons=data.get("reasons", ""),
        )
        return "Signed."
    if action in ("reconfirm", "revoke"):
        raw = data.get("signoff", "")
        if not raw.isdigit():
            raise InvalidInput("no such sign-off on this DPIA")
        if action == "reconfirm":
            await runtime.signoffs.reconfirm(user, dpia_id, int(raw))
            return "Re-confirmed over the content as it is now."
        await runtime.signoffs.revoke(user, dpia_id, int(raw))
        return "Sign-off revoked."
    raise InvalidInput("unknown action")


# -- pages ------------------------------------------------------------------------------


async def workflow_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    message, failure, status = None, None, 200
    if request.method == "POST":
        data = await form(request)
        values = {k: field(data, k, 5000) for k in data if k != "csrftoken"}
        try:
            message = await _act(request, user, dpia_id, values)
        except DomainError as problem:
            failure, status = str(problem), http_status_for(problem)
        else:
            return RedirectResponse(
                f"/dpias/{dpia_id}/workflow?done={message[:120]}", status_code=303
            )
    try:
        overview = await runtime.workflow.overview(user, dpia_id)
    except DomainError as problem:
        return render_error(request, problem)
    return page(
        request,
        "workflow.html",
        status,
        o=overview,
        sections=(await runtime.history.template_of(dpia_id)).sections,
        actions=list(SectionAction),
        kinds=STEP7_KINDS,
        decisions=list(Decision),
        ig_steps=list(IgStep),
        message=message or request.query_params.get("done", "")[:120],
        error=failure,
        locked=overview.status.is_locked,
    )


async def history_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    section = request.query_params.get("section") or None
    try:
        access = await runtime.dpias.access(user, dpia_id)
        template = await runtime.history.template_of(dpia_id)
        if section is not None and section not in template.section_ids():
            raise InvalidInput("no such section")
        items = await runtime.history.timeline(dpia_id, section)
    except DomainError as problem:
        return render_error(request, problem)
    return page(
        request,
        "history.html",
        access=access,
        items=items,
        section=section,
        sections=template.sections,
    )


async def version_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        access = await runtime.dpias.access(user, dpia_id)
        seq = _seq(request.path_params["seq"], "the version")
        template = await runtime.history.template_of(dpia_id)
        version = await runtime.history.version(dpia_id, seq)
        current = await runtime.history.current(dpia_id)
        other = request.query_params.get("compare")
        changes = (
            await runtime.history.compare(dpia_id, seq, _seq(other, "compare")) if other else None
        )
    except DomainError as problem:
        return render_error(request, problem)
    return page(
        request,
        "version.html",
        access=access,
        seq=seq,
        latest=current.seq,
        sections=template.sections,
        text={
            s: {f: plain_text(v) for f, v in fields.items()}
            for s, fields in version.content.items()
        },
        changes=changes,
        compare=other,
        can_restore=access.role.can_write and not access.status.is_locked,
    )


async def restore_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    dpia_id = request.path_params["dpia_id"]
    data = await form(request)
    try:
        seq = _seq(field(data, "seq"), "the version")
        await _restore(request, user, dpia_id, field(data, "field", 200), seq)
    except DomainError as problem:
        return render_error(request, problem)
    return RedirectResponse(f"/dpias/{dpia_id}/history", status_code=303)


async def _restore(request: Request, user: CurrentUser, dpia_id: str, path: str, seq: int) -> bool:
    runtime = runtime_of(request)
    access = await runtime.dpias.access(user, dpia_id)
    if not access.role.can_write:
        raise AccessDenied("only owners and editors can restore a field")
    if access.status.is_locked:
        raise DpiaLocked(locked_message(access.status))
    template = await runtime.history.template_of(dpia_id)
    section, spec = find_field(template, path)
    version = await runtime.history.version(dpia_id, seq)
    value = version.content[section][spec["id"]]
    changed = await runtime.editing.restore_field(
        dpia_id,
        path,
        value,
        template=template,
        actor=f"user:{user.id}",
        channel=Channel.BROWSER.value,
    )
    await runtime.audit.record(
        dpia_id,
        "restore",
        actor=f"user:{user.id}",
        section=section,
        data={
            "summary": f"restored {path} to version {seq}: {plain_text(value)[:120]}",
            "field": path,
            "from_seq": seq,
        },
    )
    return changed


async def signoff_diff_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        access = await runtime.dpias.access(user, dpia_id)
        signoff_id = _seq(request.path_params["signoff_id"], "the sign-off")
        changes = await runtime.signoffs.diff(user, dpia_id, signoff_id)
        signoff = next(s for s in await runtime.signoffs.of_dpia(dpia_id) if s.id == signoff_id)
    except (DomainError, StopIteration) as problem:
        if isinstance(problem, StopIteration):
            problem = InvalidInput("no such sign-off on this DPIA")
        return render_error(request, problem)
    return page(
        request,
        "signoff_diff.html",
        access=access,
        signoff=signoff,
        changes=changes,
        mine=signoff.signer_user_id == user.id,
    )


async def export(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    try:
        data, media_type, name = await runtime.exports.export(
            user, request.path_params["dpia_id"], request.path_params["kind"]
        )
    except DomainError as problem:
        return render_error(request, problem)
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def import_page(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    mine = await runtime.accounts.organisations_of(user)
    if request.method == "GET":
        return page(request, "import.html", organisations=mine)
    try:
        async with request.form(max_files=1, max_fields=5, max_part_size=MAX_IMPORT) as data:
            sent, cookie = data.get("csrftoken"), request.cookies.get("csrftoken")
            if not (isinstance(sent, str) and cookie and secrets.compare_digest(sent, cookie)):
                # the double-submitted token asgi-csrf checks on every other form
                raise AccessDenied("the form is out of date: reload the page and try again")
            upload = data.get("file")
            lead = data.get("lead", "")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("choose a JSON export to import")
            if not isinstance(lead, str) or not lead.isdigit():
                raise InvalidInput("choose the lead organisation")
            raw = await upload.read(MAX_IMPORT + 1)
        if len(raw) > MAX_IMPORT:
            raise InvalidInput("the file is larger than 4 MiB")
        dpia_id = await runtime.exports.import_json(user, raw, int(lead))
    except DomainError as problem:
        return page(
            request,
            "import.html",
            http_status_for(problem),
            organisations=mine,
            error=str(problem),
        )
    return RedirectResponse(f"/dpias/{dpia_id}", status_code=303)


# -- JSON API ---------------------------------------------------------------------------------


def _strings(data: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInput(f"{key[:30]} must be a string")
        out[key] = value[:5000]
    return out


def _api_action(action: str) -> Any:
    async def handler(request: Request) -> Response:
        dpia_id = request.path_params["dpia_id"]
        try:
            user = await _user(request)
            data = _strings(await read_json(request))
            data["action"] = action
            if "signoff_id" in request.path_params:
                data["signoff"] = request.path_params["signoff_id"]
            message = await _act(request, user, dpia_id, data)
            overview = await runtime_of(request).workflow.overview(user, dpia_id)
        except DomainError as failure:
            return error(http_status_for(failure), str(failure))
        return JSONResponse({"message": message, **_overview_json(overview)})

    return handler


def _overview_json(o: Any) -> dict[str, Any]:
    return {
        "id": o.dpia_id,
        "status": o.status.value,
        "ig_step": o.ig_step.value,
        "ig_involved": o.ig_step.involved,
        "sections": {s: state.value for s, state in o.sections.items()},
        "residual_high_risks": o.residual_high,
        "next": [t.target.value for t in o.next_steps],
        "seq": o.seq,
        "signoffs": [
            {
                "id": s.id,
                "kind": s.kind.value,
                "target": s.target,
                "signer": s.signer_name,
                "role": s.signer_role,
                "organisation": s.signer_organisation,
                "party": s.party,
                "decision": s.decision,
                "conditions": s.conditions,
                "reasons": s.reasons,
                "seq": s.seq,
                "sha256": s.content_hash,
                "state": s.state.value,
                "at": s.created_at.isoformat(),
            }
            for s in o.signoffs
        ],
    }


async def api_workflow(request: Request) -> Response:
    try:
        user = await _user(request)
        overview = await runtime_of(request).workflow.overview(user, request.path_params["dpia_id"])
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse(_overview_json(overview))


async def api_diff(request: Request) -> Response:
    try:
        user = await _user(request)
        changes = await runtime_of(request).signoffs.diff(
            user, request.path_params["dpia_id"], _seq(request.path_params["signoff_id"], "id")
        )
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"changes": [_change(c) for c in changes]})


def _change(c: Any) -> dict[str, str]:
    return {"field": c.path, "label": c.label, "before": c.before, "after": c.after}


async def api_history(request: Request) -> Response:
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        user = await _user(request)
        await runtime.dpias.access(user, dpia_id)
        items = await runtime.history.timeline(dpia_id, request.query_params.get("section"))
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse(
        {
            "items": [
                {
                    "at": i.at.isoformat(),
                    "kind": i.kind,
                    "actor": i.actor,
                    "channel": i.channel,
                    "summary": i.summary,
                    "sections": i.sections,
                    "fields": i.fields,
                    "first_seq": i.first_seq,
                    "last_seq": i.last_seq,
                    "size": i.size,
                }
                for i in items
            ]
        }
    )


async def api_version(request: Request) -> Response:
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        user = await _user(request)
        await runtime.dpias.access(user, dpia_id)
        seq = _seq(request.path_params["seq"], "the version")
        version = await runtime.history.version(dpia_id, seq)
        other = request.query_params.get("compare")
        changes = (
            [
                _change(c)
                for c in await runtime.history.compare(dpia_id, seq, _seq(other, "compare"))
            ]
            if other
            else None
        )
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"seq": seq, "content": version.content, "changes": changes})


async def api_restore(request: Request) -> Response:
    try:
        user = await _user(request)
        data = await read_json(request)
        seq = data.get("seq")
        path = data.get("field")
        if not isinstance(seq, int) or not isinstance(path, str):
            raise InvalidInput('send {"field": "section.field", "seq": n}')
        changed = await _restore(request, user, request.path_params["dpia_id"], path, seq)
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"field": path, "seq": seq, "changed": changed})


async def api_import(request: Request) -> Response:
    try:
        user = await _user(request)
        lead = request.query_params.get("lead", "")
        if not lead.isdigit():
            raise InvalidInput("say which organisation leads it: ?lead=<organisation id>")
        body = await request.body()
        if len(body) > MAX_IMPORT:
            raise InvalidInput("the export is larger than 4 MiB")
        dpia_id = await runtime_of(request).exports.import_json(user, body, int(lead))
    except DomainError as failure:
        return error(http_status_for(failure), str(failure))
    return JSONResponse({"id": dpia_id}, status_code=201)


routes = [
    Route(IMPORT_PATH, import_page, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/workflow", workflow_page, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/history", history_page),
    Route("/dpias/{dpia_id}/versions/{seq}", version_page),
    Route("/dpias/{dpia_id}/restore", restore_page, methods=["POST"]),
    Route("/dpias/{dpia_id}/signoffs/{signoff_id}", signoff_diff_page),
    Route("/dpias/{dpia_id}/export.{kind}", export),
    Route("/api/dpias/import", api_import, methods=["POST"]),
    Route("/api/dpias/{dpia_id}/workflow", api_workflow),
    Route("/api/dpias/{dpia_id}/status", _api_action("status"), methods=["POST"]),
    Route("/api/dpias/{dpia_id}/sections", _api_action("section"), methods=["POST"]),
    Route("/api/dpias/{dpia_id}/ig-step", _api_action("ig_step"), methods=["POST"]),
    Route("/api/dpias/{dpia_id}/signoffs", _api_action("sign"), methods=["POST"]),
    Route(
        "/api/dpias/{dpia_id}/signoffs/{signoff_id}/reconfirm",
        _api_action("reconfirm"),
        methods=["POST"],
    ),
    Route(
        "/api/dpias/{dpia_id}/signoffs/{signoff_id}/revoke",
        _api_action("revoke"),
        methods=["POST"],
    ),
    Route("/api/dpias/{dpia_id}/signoffs/{signoff_id}/diff", api_diff),
    Route("/api/dpias/{dpia_id}/history", api_history),
    Route("/api/dpias/{dpia_id}/versions/{seq}", api_version),
    Route("/api/dpias/{dpia_id}/restore", api_restore, methods=["POST"]),
]
