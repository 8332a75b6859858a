"""Review, sign-off, history and exports: pages (forms, no JavaScript needed) and JSON API.

Handlers read input, call one use case (``server.usecases``) or read a service, and render;
who is signed in and their standing on the DPIA come resolved (``web.context``), and the
domain errors raised become the error page or the JSON error (``web.errors``).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from server.domain import guidance, wording
from server.domain.content import changed_fields, restore_policy
from server.domain.errors import AccessDenied, DomainError, InvalidInput, TooLarge
from server.domain.inputs import MAX_SEQ, whole_number
from server.domain.readable import read_content
from server.domain.reviews import DATE_REASON
from server.domain.risk import RiskMatrix, register_rows
from server.domain.workflow import IgStep, SignOffState, transition
from server.services.exports import ACTION_PLAN, has_field
from server.services.history import field_changes
from server.settings import Settings
from server.web.context import (
    DpiaRequest,
    UserRequest,
    dpia_api,
    dpia_page,
    retention_context,
    user_api,
    user_page,
)
from server.web.errors import http_status_for
from server.web.middleware import describe_size
from server.web.rendering import field, form, json_value, page, read_json
from server.web.reviews import review_context

IMPORT_PATH = "/dpias/import"
API_IMPORT_PATH = "/api/dpias/import"
FORM_OVERHEAD = 64 * 1024  # the import form's other fields and its multipart framing


def import_too_large(limit: int) -> str:
    return (
        f"The export is larger than {describe_size(limit)}, the most this installation "
        "imports. Import a smaller file, or ask an administrator to raise "
        "OPENDPIA_IMPORT_MAX_BYTES."
    )


def import_body_limits(settings: Settings) -> dict[str, tuple[int, str]]:
    """The request body limits of the two import routes (``BodyLimit``'s ``paths``)."""
    limit, message = settings.import_max_bytes, import_too_large(settings.import_max_bytes)
    return {IMPORT_PATH: (limit + FORM_OVERHEAD, message), API_IMPORT_PATH: (limit, message)}


def checks_its_own_csrf(scope: Scope) -> bool:
    """The import form's multipart POST: ``import_page`` checks its CSRF token itself."""
    return bool(scope.get("path") == IMPORT_PATH and scope.get("method") == "POST")


def _seq(raw: object, name: str) -> int:
    return whole_number(raw, name, MAX_SEQ)


# -- actions shared by the form and the JSON API ---------------------------------------------


async def _act(context: DpiaRequest, data: dict[str, str]) -> str:
    """One workflow action from the form or the JSON API, as one use case; what to say."""
    usecases, member = context.runtime.usecases, context.member
    action = data.get("action", "")
    if action == "status":
        status = await usecases.workflow.move(
            member, data.get("status", ""), data.get("reasons", "")
        )
        return wording.dpia_now(status.label)
    if action == "section":
        section = data.get("section", "")
        state = await usecases.workflow.section_step(
            member, section, data.get("step", ""), data.get("reasons", "")
        )
        template = await context.runtime.history.template_of(context.dpia_id)
        return wording.section_now(wording.section_title(template.sections, section), state.label)
    if action == "ig_step":
        step = await usecases.workflow.set_ig_step(member, data.get("step", ""))
        return f"The project is at step {step.label}."
    if action == "sign":
        await usecases.signoffs.sign(
            member,
            kind=data.get("kind", ""),
            decision=data.get("decision", ""),
            target=data.get("target", ""),
            conditions=data.get("conditions", ""),
            reasons=data.get("reasons", ""),
        )
        return "Signed."
    if action in ("reconfirm", "revoke"):
        signoff_id = whole_number(data.get("signoff", ""), "The sign-off number")
        if action == "reconfirm":
            await usecases.signoffs.reconfirm(member, signoff_id)
            return "Re-confirmed over the content as it is now."
        await usecases.signoffs.revoke(member, signoff_id)
        return "Sign-off revoked."
    raise InvalidInput("This page has no such action: reload it and try again")


# -- pages ------------------------------------------------------------------------------


@dpia_page
async def workflow_page(context: DpiaRequest) -> Response:
    request, runtime, dpia_id = context.request, context.runtime, context.dpia_id
    message, failure, status = None, None, 200
    if request.method == "POST":
        data = await form(request)
        values = {k: field(data, k, 5000) for k in data if k != "csrftoken"}
        if _needs_confirming(context, values):
            # "Send for review" shows what is still empty or stale first; nothing changes
            # until the person confirms.
            return await _confirm_move(context, values["status"], values.get("reasons", ""))
        try:
            message = await _act(context, values)
        except DomainError as problem:
            failure, status = str(problem), http_status_for(problem)
        else:
            return RedirectResponse(
                f"/dpias/{dpia_id}/workflow?done={quote(message[:120])}", status_code=303
            )
    overview = await runtime.workflow.overview(context.user, dpia_id)
    template = await runtime.history.template_of(dpia_id)
    sections = template.sections
    return page(
        request,
        "workflow.html",
        status,
        o=overview,
        sections=sections,
        has_action_plan=has_field(template, ACTION_PLAN),
        project_id=await runtime.projects.project_of(dpia_id),
        steps=guidance.dpia_steps(overview.status, overview.role),
        confirmed=guidance.CONFIRMED_MOVES,
        section_steps={
            s["id"]: guidance.section_steps(
                s["id"], overview.sections, overview.role, overview.status
            )
            for s in sections
        },
        kinds=guidance.signing_kinds(overview.role, overview.status),
        decisions=guidance.signing_decisions(overview.role),
        ig_steps=list(IgStep),
        message=message or request.query_params.get("done", "")[:120],
        error=failure,
        locked=overview.status.is_locked,
        party_signoffs=await runtime.parties.of_document(context.user, dpia_id),
        endorsed_changes=await runtime.adoption.changes_from_endorsed(context.user, dpia_id),
        **await retention_context(context),
        **await review_context(context),
        date_reason=DATE_REASON,
    )


def _needs_confirming(context: DpiaRequest, values: dict[str, str]) -> bool:
    return (
        values.get("action") == "status"
        and values.get("status") in guidance.CONFIRMED_MOVES
        and values.get("confirm") != "yes"
    )


@dpia_page
async def confirm_move_page(context: DpiaRequest) -> Response:
    """The check page of a move that asks for confirmation ("Send for review")."""
    target = context.request.query_params.get("status", "")
    if target not in guidance.CONFIRMED_MOVES:
        raise InvalidInput("Only sending a DPIA for review asks for confirmation")
    return await _confirm_move(context, target, "")


async def _confirm_move(context: DpiaRequest, target: str, reasons: str) -> Response:
    runtime, dpia_id = context.runtime, context.dpia_id
    overview = await runtime.workflow.overview(context.user, dpia_id)
    chosen = transition(overview.status, target, overview.role, "confirming")
    template = await runtime.history.template_of(dpia_id)
    current = await runtime.history.current(dpia_id)
    return page(
        context.request,
        "workflow_confirm.html",
        o=overview,
        move=chosen,
        reasons=reasons,
        gaps=guidance.review_gaps(template, current.content, overview.sections),
        stale=[s for s in overview.signoffs if s.state is SignOffState.STALE],
        sections=template.sections,
    )


@dpia_page
async def history_page(context: DpiaRequest) -> Response:
    request, runtime, dpia_id = context.request, context.runtime, context.dpia_id
    section = request.query_params.get("section") or None
    template = await runtime.history.template_of(dpia_id)
    if section is not None and section not in template.section_ids():
        raise InvalidInput("No such section")
    items = await runtime.history.timeline(dpia_id, section)
    return page(
        request,
        "history.html",
        access=context.access,
        items=items,
        section=section,
        sections=template.sections,
    )


@dpia_page
async def version_page(context: DpiaRequest) -> Response:
    request, runtime, dpia_id, access = (
        context.request,
        context.runtime,
        context.dpia_id,
        context.access,
    )
    seq = _seq(request.path_params["seq"], "The version in the address")
    template = await runtime.history.template_of(dpia_id)
    version = await runtime.history.version(dpia_id, seq)
    current = await runtime.history.current(dpia_id)
    # Compared with the current version unless another is asked for; restore is offered
    # only on the fields that differ from the current version (restoring any other would
    # change nothing).
    other = _seq(request.query_params.get("compare") or current.seq, "The version to compare")
    changes = (
        field_changes(template, version.content, current.content)
        if other == current.seq
        else await runtime.history.compare(dpia_id, seq, other)
    )
    return page(
        request,
        "version.html",
        access=access,
        seq=seq,
        latest=current.seq,
        sections=read_content(template, version.content),
        changes=changes,
        compare=other,
        differs=set(changed_fields(version.content, current.content)),
        can_restore=restore_policy(access.role, access.status).allowed,
        heat_maps=RiskMatrix.from_template(template.content).heat_maps(
            register_rows(template.content, version.content)
        ),
    )


@dpia_page
async def restore_page(context: DpiaRequest) -> Response:
    data = await form(context.request)
    seq = _seq(field(data, "seq"), "The version")
    await context.runtime.usecases.history.restore(context.member, field(data, "field", 200), seq)
    return RedirectResponse(f"/dpias/{context.dpia_id}/history", status_code=303)


@dpia_page
async def signoff_diff_page(context: DpiaRequest) -> Response:
    runtime, dpia_id = context.runtime, context.dpia_id
    signoff_id = whole_number(context.request.path_params["signoff_id"], "The sign-off number")
    changes = await runtime.signoffs.diff(context.user, dpia_id, signoff_id)
    signoff = next((s for s in await runtime.signoffs.of_dpia(dpia_id) if s.id == signoff_id), None)
    if signoff is None:
        raise InvalidInput("No such sign-off on this DPIA")
    return page(
        context.request,
        "signoff_diff.html",
        access=context.access,
        signoff=signoff,
        sections=(await runtime.history.template_of(dpia_id)).sections,
        changes=changes,
        mine=signoff.signer_user_id == context.user.id,
    )


@dpia_page
async def export(context: DpiaRequest) -> Response:
    data, media_type, name = await context.runtime.exports.export(
        context.user, context.dpia_id, context.request.path_params["kind"]
    )
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@user_page
async def import_page(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    mine = await runtime.accounts.organisations_of(user)
    if request.method == "GET":
        return page(request, "import.html", organisations=mine)
    limit = runtime.settings.import_max_bytes
    try:
        async with request.form(max_files=1, max_fields=5, max_part_size=limit) as data:
            sent, cookie = data.get("csrftoken"), request.cookies.get("csrftoken")
            if not (isinstance(sent, str) and cookie and secrets.compare_digest(sent, cookie)):
                # the double-submitted token asgi-csrf checks on every other form
                raise AccessDenied("The form is out of date: reload the page and try again")
            upload = data.get("file")
            lead = data.get("lead", "")
            if upload is None or isinstance(upload, str):
                raise InvalidInput("Choose a JSON export to import")
            if not isinstance(lead, str) or not lead:
                raise InvalidInput("Choose the lead organisation")
            lead_id = whole_number(lead, "The lead organisation")
            raw = await upload.read(limit + 1)
        if len(raw) > limit:
            raise TooLarge(import_too_large(limit))
        _, documents = await runtime.project_exports.import_file(user, raw, lead_id)
    except DomainError as problem:
        return page(
            request,
            "import.html",
            http_status_for(problem),
            organisations=mine,
            error=str(problem),
        )
    return RedirectResponse(f"/dpias/{documents[0]}", status_code=303)


@user_page
async def project_export(context: UserRequest) -> Response:
    """The whole project as one JSON file (every document the person takes part in)."""
    data, name = await context.runtime.project_exports.export(
        context.user, context.request.path_params["project_id"]
    )
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- JSON API ---------------------------------------------------------------------------------


def _strings(data: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidInput(f"The field {key[:30]!r} must be a string")
        out[key] = value[:5000]
    return out


def _api_action(action: str) -> Any:
    @dpia_api
    async def handler(context: DpiaRequest) -> Response:
        request = context.request
        data = _strings(await read_json(request))
        data["action"] = action
        if "signoff_id" in request.path_params:
            data["signoff"] = request.path_params["signoff_id"]
        message = await _act(context, data)
        overview = await context.runtime.workflow.overview(context.user, context.dpia_id)
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


@dpia_api
async def api_workflow(context: DpiaRequest) -> Response:
    overview = await context.runtime.workflow.overview(context.user, context.dpia_id)
    return JSONResponse(_overview_json(overview))


@dpia_api
async def api_diff(context: DpiaRequest) -> Response:
    signoff_id = whole_number(context.request.path_params["signoff_id"], "The sign-off number")
    changes = await context.runtime.signoffs.diff(context.user, context.dpia_id, signoff_id)
    return JSONResponse({"changes": [_change(c) for c in changes]})


def _change(c: Any) -> dict[str, str]:
    return {"field": c.path, "label": c.label, "before": c.before, "after": c.after}


@dpia_api
async def api_history(context: DpiaRequest) -> Response:
    items = await context.runtime.history.timeline(
        context.dpia_id, context.request.query_params.get("section")
    )
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


@dpia_api
async def api_version(context: DpiaRequest) -> Response:
    history, dpia_id = context.runtime.history, context.dpia_id
    seq = _seq(context.request.path_params["seq"], "The version in the address")
    version = await history.version(dpia_id, seq)
    other = context.request.query_params.get("compare")
    changes = (
        [
            _change(c)
            for c in await history.compare(dpia_id, seq, _seq(other, "The version to compare"))
        ]
        if other
        else None
    )
    return JSONResponse({"seq": seq, "content": version.content, "changes": changes})


@dpia_api
async def api_restore(context: DpiaRequest) -> Response:
    data = await read_json(context.request)
    wrong = 'Send {"field": "section.field", "seq": n}'
    seq = _seq(json_value(data, "seq", int, wrong), 'The version ("seq")')
    path = json_value(data, "field", str, wrong)
    changed = await context.runtime.usecases.history.restore(context.member, path, seq)
    return JSONResponse({"field": path, "seq": seq, "changed": changed})


@user_api
async def api_import(context: UserRequest) -> Response:
    request = context.request
    lead = request.query_params.get("lead", "")
    if not lead:
        raise InvalidInput("Say which organisation leads it: ?lead=<organisation id>")
    lead_id = whole_number(lead, "The lead organisation (?lead=)")
    body = await request.body()
    limit = context.runtime.settings.import_max_bytes
    if len(body) > limit:  # BodyLimit refuses it first; this keeps the route safe alone
        raise TooLarge(import_too_large(limit))
    project_id, documents = await context.runtime.project_exports.import_file(
        context.user, body, lead_id
    )
    if project_id is None:
        return JSONResponse({"id": documents[0]}, status_code=201)
    return JSONResponse(
        {"id": documents[0], "project": project_id, "documents": documents}, status_code=201
    )


routes = [
    Route(IMPORT_PATH, import_page, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/workflow", workflow_page, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/workflow/confirm", confirm_move_page),
    Route("/dpias/{dpia_id}/history", history_page),
    Route("/dpias/{dpia_id}/versions/{seq}", version_page),
    Route("/dpias/{dpia_id}/restore", restore_page, methods=["POST"]),
    Route("/dpias/{dpia_id}/signoffs/{signoff_id}", signoff_diff_page),
    Route("/dpias/{dpia_id}/export.{kind}", export),
    Route("/projects/{project_id}/export.json", project_export),
    Route(API_IMPORT_PATH, api_import, methods=["POST"]),
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
