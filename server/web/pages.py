"""Server-rendered pages: sign-in, dashboard, new DPIA, the editor page, participants.

Pages work without JavaScript except the editor itself. Each handler resolves who is
signed in, and their standing on the DPIA, once (``web.context``) and changes anything
through one use case (``server.usecases``); the domain errors they raise become a page
with the status from ``web.errors``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain import wording
from server.domain.access import Role
from server.domain.dpias import DpiaStatus, PartyRole, locked_message, manage_policy
from server.domain.errors import DomainError, InvalidInput, TooManyAttempts
from server.domain.inputs import whole_number
from server.domain.templates import DEFAULT_TEMPLATE, load_template
from server.domain.workflow import IgStep
from server.services.accounts import SESSION_LIFETIME
from server.web.auth import SESSION_COOKIE, current_user, runtime_of, sessions_ended
from server.web.context import DpiaRequest, UserRequest, dpia_page, retention_context, user_page
from server.web.errors import http_status_for
from server.web.rendering import field, form, page
from server.web.signin import forms_may_leave_for_providers, leave_for_provider

PALETTE = ["#1f6fb4", "#b4451f", "#1f8a4c", "#7a3fb0", "#a8326a", "#8a6d00", "#00707a"]


async def home(request: Request) -> Response:
    user = await current_user(request)
    return RedirectResponse("/projects" if user else "/login", status_code=303)


async def login(request: Request) -> Response:
    return await forms_may_leave_for_providers(request, await _login(request))


async def _login(request: Request) -> Response:
    next_path = _local_path(request.query_params.get("next", "/projects"))
    if request.method == "GET":
        return page(request, "login.html", next=next_path, email="")
    data = await form(request)
    email = field(data, "email", 254)
    password = field(data, "password")
    runtime = runtime_of(request)
    address = request.client.host if request.client else "unknown"
    if not password:  # the email first: its organisation may sign people in itself
        provider = await runtime.signin.for_email(email) if "@" in email else None
        if provider is not None:
            chosen = _local_path(field(data, "next") or next_path)
            return await leave_for_provider(request, provider, email.strip(), chosen)
        return page(request, "login.html", next=next_path, email=email, ask_password=True)
    try:
        secret = await runtime.accounts.sign_in(email, password, address)
    except DomainError as error:
        status = http_status_for(error)
        response = page(
            request, "login.html", status, next=next_path, email=email, error=str(error)
        )
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = RedirectResponse(_local_path(field(data, "next") or next_path), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=runtime.settings.env == "production",
    )
    return response


async def logout(request: Request) -> Response:
    runtime = runtime_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    user = await runtime.accounts.user_for_session(secret)
    await runtime.accounts.sign_out(secret)
    if user is not None:  # the connections this session opened close now, everywhere
        await sessions_ended(runtime, user.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@user_page
async def dashboard(context: UserRequest) -> Response:
    request, runtime = context.request, context.runtime
    query = request.query_params
    status = query.get("status", "")
    organisation = query.get("organisation", "")
    ig_step = query.get("ig_step", "")
    dpias = await runtime.dpias.list_for(
        context.user,
        search=query.get("q", "")[:100],
        status=status if status in DpiaStatus.__members__.values() else "",
        organisation_id=whole_number(organisation, "The organisation filter")
        if organisation
        else None,
        ig_step=ig_step if ig_step in IgStep.__members__.values() else "",
    )
    expiries = await runtime.usecases.protection.retention.expiries([d.id for d in dpias])
    return page(
        request,
        "dashboard.html",
        dpias=dpias,
        q=query.get("q", "")[:100],
        status=status,
        organisation=organisation,
        ig_step=ig_step,
        ig_steps=list(IgStep),
        statuses=list(DpiaStatus),
        organisations=await runtime.dpias.organisations(),
        expiries=expiries,
        expired={d for d, until in expiries.items() if until <= datetime.now(UTC)},
        deleted=query.get("deleted", "")[:100],
    )


@user_page
async def new_dpia(context: UserRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    mine = await runtime.accounts.organisations_of(user)
    reusable = await runtime.dpias.list_for(user)
    # The templates any of the person's organisations may use; the lead's are checked.
    choices = await runtime.dpias.templates.choices([id for id, _code, _name in mine])
    if request.method == "GET":
        origin = request.query_params.get("origin", "")[:100]
        chosen = request.query_params.get("template", DEFAULT_TEMPLATE)[:50]
        return page(
            request,
            "new.html",
            organisations=mine,
            reusable=reusable,
            templates=choices,
            values={"origin": origin, "template": chosen},
        )
    data = await form(request)
    values = {k: field(data, k) for k in ("title", "lead", "origin", "template")}
    try:
        if not values["lead"]:
            raise InvalidInput("Choose the lead organisation")
        lead = whole_number(values["lead"], "The lead organisation")
        if values["origin"]:
            dpia_id = await runtime.dpias.clone(user, values["origin"], values["title"], lead)
        else:
            if lead not in user.organisation_ids:
                raise InvalidInput("The lead organisation must be one of your organisations")
            template = await runtime.dpias.templates.choose(
                [lead], values["template"][:50] or DEFAULT_TEMPLATE
            )
            dpia_id = await runtime.dpias.create(
                user,
                values["title"],
                lead,
                template_id=template.id,
                template_version=template.version,
            )
    except DomainError as error:
        return page(
            request,
            "new.html",
            http_status_for(error),
            organisations=mine,
            reusable=reusable,
            templates=choices,
            values=values,
            error=str(error),
        )
    return RedirectResponse(f"/dpias/{dpia_id}", status_code=303)


@dpia_page
async def editor(context: DpiaRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    dpia_id, access = context.dpia_id, context.access
    config = editor_config(
        request,
        dpia_id=dpia_id,
        title=access.title,
        role=access.role,
        user_id=f"user:{user.id}",
        user_name=user.name,
        colour_seed=user.id,
        template_id=access.template_id,
        template_version=access.template_version,
    )
    overview = await runtime.workflow.overview(user, dpia_id)
    config["locked"] = locked_message(access.status) if access.status.is_locked else None
    config["participantId"] = access.participant_id
    config["roleNote"] = wording.reading_as(
        access.role.value,
        editable=access.role.can_write and not access.status.is_locked,
        locked=access.status.is_locked,
    )
    config["reviewStates"] = {section: state.value for section, state in overview.sections.items()}
    return page(
        request,
        "editor.html",
        access={"id": dpia_id, "title": access.title, "owner": access.role.can_manage},
        config=config,
        locked=locked_message(access.status) if access.status.is_locked else None,
        sources_changed=await runtime.usecases.projects.changed_sources(dpia_id),
        proposed_risks=await runtime.usecases.risk_proposals.pending_count(context.member)
        if load_template(access.template_id).content.get("risk_catalogue")
        else None,
        can_prefill=access.template_id == "uk-dpia"
        and access.role.can_write
        and not access.status.is_locked,
        filled=int(filled[:4])
        if (filled := request.query_params.get("filled", "")).isdigit()
        else None,
        project=await _project_context(context),
        template=await _template_context(context),
        **await retention_context(context),
    )


async def _template_context(context: DpiaRequest) -> dict[str, Any]:
    """The template and version the DPIA follows, and the newest published version."""
    access = context.access
    current = load_template(access.template_id, access.template_version)
    newest = await context.runtime.dpias.templates.template(access.template_id)
    recorded = access.template_version or current.version
    return {
        "title": current.title,
        "version": recorded,
        "newer": newest.version if newest.version > recorded else None,
    }


async def _project_context(context: DpiaRequest) -> dict[str, str] | None:
    """Which project and step the document is the record of, for the way back to it."""
    runtime, dpia_id = context.runtime, context.dpia_id
    project_id = await runtime.projects.project_of(dpia_id)
    if project_id is None:
        return None
    view = await runtime.projects.view(context.user, project_id)
    kind = next(d.kind for d in view.documents if d.id == dpia_id)
    return {
        "id": view.id,
        "title": view.title,
        "step": wording.step_of_seven(kind.step.number, kind.step.short_label),
        "record": kind.label,
    }


def editor_config(
    request: Request,
    *,
    dpia_id: str,
    title: str,
    role: Role,
    user_id: str,
    user_name: str,
    colour_seed: int = 0,
    token: str | None = None,
    template_id: str = DEFAULT_TEMPLATE,
    template_version: int | None = None,
) -> dict[str, Any]:
    """What the editor bundle reads from the page (frontend/README.md)."""
    scheme = "wss" if request.url.scheme == "https" else "ws"
    csrf = request.scope.get("csrftoken")
    return {
        "dpiaId": dpia_id,
        "title": title,
        "wsUrl": f"{scheme}://{request.url.netloc}/ws/dpia",
        "token": token,
        "role": role.value,
        "user": {
            "id": user_id,
            "name": user_name,
            "color": PALETTE[colour_seed % len(PALETTE)],
        },
        "template": load_template(template_id, template_version).content,
        "commentsUrl": f"/api/dpias/{dpia_id}/comments",
        "csrfToken": csrf() if csrf else "",
    }


@dpia_page
async def participants(context: DpiaRequest) -> Response:
    request, runtime, user = context.request, context.runtime, context.user
    dpia_id = context.dpia_id
    error = None
    status = 200
    if request.method == "POST":
        data = await form(request)
        if field(data, "action") in _REMOVALS and field(data, "confirm") != "yes":
            # Removing asks first; the POST without confirmation changes nothing.
            return await _confirm_removal(context, data)
        try:
            await _participants_action(context, data)
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(f"/dpias/{dpia_id}/participants", status_code=303)
    people = await runtime.dpias.participants(user, dpia_id)
    parties = await runtime.dpias.parties(user, dpia_id)
    reviewers = await runtime.dpias.reviewers(user, dpia_id)
    return page(
        request,
        "participants.html",
        status,
        access=context.access,
        people=people,
        roles=list(Role),
        parties=parties,
        party_roles=list(PartyRole),
        reviews={
            participant: [s for s, ids in reviewers.items() if participant in ids]
            for participant in {p.id for p in people}
        },
        sections=load_template(
            context.access.template_id, context.access.template_version
        ).sections,
        organisations=await runtime.dpias.organisations(),
        error=error,
    )


# action → the form field naming what it removes
_REMOVALS = {"remove": "participant", "remove-party": "party"}


@dpia_page
async def confirm_removal(context: DpiaRequest) -> Response:
    """The question before removing someone or a party: what goes, and what stays."""
    query = context.request.query_params
    action = "remove-party" if "party" in query else "remove"
    return await _confirm_removal(
        context, {"action": action, _REMOVALS[action]: query.get(_REMOVALS[action], "")}
    )


async def _confirm_removal(context: DpiaRequest, data: FormData | dict[str, str]) -> Response:
    manage_policy(context.access.role).require()
    runtime, user, dpia_id = context.runtime, context.user, context.dpia_id
    action = str(data.get("action", ""))
    key = _REMOVALS[action]
    chosen = _number(str(data.get(key, "")), key)
    listed: list[Any] = (
        await runtime.dpias.participants(user, dpia_id)
        if action == "remove"
        else await runtime.dpias.parties(user, dpia_id)
    )
    found = next((p for p in listed if p.id == chosen), None)
    if found is None:
        raise InvalidInput(f"This DPIA has no such {key}: reload the participants page")
    return page(
        context.request,
        "participants_remove.html",
        access=context.access,
        action=action,
        key=key,
        subject=found,
    )


async def _participants_action(context: DpiaRequest, data: FormData) -> None:
    """The participants form's actions, each one use case."""
    actions, member = context.runtime.usecases.participants, context.member
    action = field(data, "action")
    if action == "invite":
        await actions.invite(
            member, field(data, "email", 254), field(data, "role"), field(data, "name", 200)
        )
    elif action == "reviews":
        participant_id = _number(field(data, "participant"), "participant")
        chosen = [s for s in data.getlist("reviews") if isinstance(s, str)]
        await actions.set_reviews(member, participant_id, chosen)
    elif action == "add-party":
        organisation = field(data, "organisation")
        await actions.add_party(
            member,
            field(data, "party_role"),
            organisation_id=whole_number(organisation, "The organisation")
            if organisation
            else None,
            name=field(data, "party_name", 200),
        )
    elif action == "remove-party":
        await actions.remove_party(member, _number(field(data, "party"), "party"))
    elif action == "role":
        participant_id = _number(field(data, "participant"), "participant")
        await actions.change_role(member, participant_id, field(data, "role"))
    elif action == "remove":
        await actions.remove(member, _number(field(data, "participant"), "participant"))
    else:
        raise InvalidInput("Unknown action")


def _number(raw: str, what: str) -> int:
    return whole_number(raw, f"The {what}")


def _local_path(raw: str) -> str:
    """Only same-site paths: no open redirect through ?next=."""
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/projects"
    return raw[:300]


routes = [
    Route("/", home),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/dpias", dashboard),
    Route("/dpias/new", new_dpia, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}", editor),
    Route("/dpias/{dpia_id}/participants", participants, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}/participants/remove", confirm_removal),
]
