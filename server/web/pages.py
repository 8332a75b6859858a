"""Server-rendered pages: sign-in, dashboard, new DPIA, the editor page, participants.

Pages work without JavaScript except the editor itself. Business rules raise domain
errors; ``render_error`` turns them into a page with the status from ``web.errors``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from server.domain.access import Role
from server.domain.dpias import DpiaStatus, PartyRole, locked_message
from server.domain.errors import DomainError, InvalidInput, TooManyAttempts
from server.domain.templates import load_template
from server.domain.workflow import IgStep
from server.services.accounts import SESSION_LIFETIME, CurrentUser
from server.web.auth import SESSION_COOKIE, current_user, runtime_of
from server.web.errors import http_status_for

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PALETTE = ["#1f6fb4", "#b4451f", "#1f8a4c", "#7a3fb0", "#a8326a", "#8a6d00", "#00707a"]


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    csrf = request.scope.get("csrftoken")
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("unread", getattr(request.state, "unread", 0))
    return templates.TemplateResponse(
        request, name, {"csrftoken": csrf() if csrf else "", **context}, status_code=status_code
    )


def render_error(request: Request, error: DomainError) -> Response:
    status = http_status_for(error)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyAttempts) else {}
    response = page(request, "error.html", status, message=str(error), status=status)
    response.headers.update(headers)
    return response


async def signed_in(request: Request) -> CurrentUser | Response:
    user = await current_user(request)
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    request.state.user = user
    request.state.unread = await runtime_of(request).notifications.inbox.unread(user)
    return user


async def form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)


def field(data: FormData, name: str, maximum: int = 1000) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")
    if len(value) > maximum:
        raise InvalidInput(f"{name} is longer than {maximum} characters")
    return value


async def home(request: Request) -> Response:
    user = await current_user(request)
    return RedirectResponse("/dpias" if user else "/login", status_code=303)


async def login(request: Request) -> Response:
    next_path = _local_path(request.query_params.get("next", "/dpias"))
    if request.method == "GET":
        return page(request, "login.html", next=next_path, email="")
    data = await form(request)
    email = field(data, "email", 254)
    runtime = runtime_of(request)
    address = request.client.host if request.client else "unknown"
    try:
        secret = await runtime.accounts.sign_in(email, field(data, "password"), address)
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
    await runtime_of(request).accounts.sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def dashboard(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    query = request.query_params
    status = query.get("status", "")
    organisation = query.get("organisation", "")
    ig_step = query.get("ig_step", "")
    try:
        dpias = await runtime.dpias.list_for(
            user,
            search=query.get("q", "")[:100],
            status=status if status in DpiaStatus.__members__.values() else "",
            organisation_id=int(organisation) if organisation.isdigit() else None,
            ig_step=ig_step if ig_step in IgStep.__members__.values() else "",
        )
    except DomainError as error:
        return render_error(request, error)
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
    )


async def new_dpia(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    mine = await runtime.accounts.organisations_of(user)
    reusable = await runtime.dpias.list_for(user)
    if request.method == "GET":
        origin = request.query_params.get("origin", "")[:100]
        return page(
            request, "new.html", organisations=mine, reusable=reusable, values={"origin": origin}
        )
    data = await form(request)
    values = {k: field(data, k) for k in ("title", "lead", "origin")}
    try:
        if not values["lead"].isdigit():
            raise InvalidInput("choose the lead organisation")
        if values["origin"]:
            dpia_id = await runtime.dpias.clone(
                user, values["origin"], values["title"], int(values["lead"])
            )
        else:
            dpia_id = await runtime.dpias.create(user, values["title"], int(values["lead"]))
    except DomainError as error:
        return page(
            request,
            "new.html",
            http_status_for(error),
            organisations=mine,
            reusable=reusable,
            values=values,
            error=str(error),
        )
    return RedirectResponse(f"/dpias/{dpia_id}", status_code=303)


async def editor(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    try:
        access = await runtime.dpias.access(user, dpia_id)
    except DomainError as error:
        return render_error(request, error)
    config = editor_config(
        request,
        dpia_id=dpia_id,
        title=access.title,
        role=access.role,
        user_id=f"user:{user.id}",
        user_name=user.name,
        colour_seed=user.id,
    )
    overview = await runtime.workflow.overview(user, dpia_id)
    config["locked"] = locked_message(access.status) if access.status.is_locked else None
    config["reviewStates"] = {section: state.value for section, state in overview.sections.items()}
    return page(
        request,
        "editor.html",
        access={"id": dpia_id, "title": access.title, "owner": access.role.can_manage},
        config=config,
        locked=locked_message(access.status) if access.status.is_locked else None,
    )


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
        "template": load_template().content,
        "commentsUrl": f"/api/dpias/{dpia_id}/comments",
        "csrfToken": csrf() if csrf else "",
    }


async def participants(request: Request) -> Response:
    user = await signed_in(request)
    if isinstance(user, Response):
        return user
    runtime = runtime_of(request)
    dpia_id = request.path_params["dpia_id"]
    error = None
    status = 200
    try:
        access = await runtime.dpias.access(user, dpia_id)
        if request.method == "POST":
            data = await form(request)
            action = field(data, "action")
            try:
                if action == "invite":
                    invited = await runtime.dpias.invite(
                        user,
                        dpia_id,
                        field(data, "email", 254),
                        field(data, "role"),
                        field(data, "name", 200),
                    )
                    await runtime.notifications.record_invitation(dpia_id, invited, user.name)
                elif action == "reviews":
                    participant_id = field(data, "participant")
                    if not participant_id.isdigit():
                        raise InvalidInput("no such participant on this DPIA")
                    chosen = set(data.getlist("reviews"))
                    for section in load_template().section_ids():
                        await runtime.dpias.set_reviewer(
                            user, dpia_id, section, int(participant_id), section in chosen
                        )
                elif action == "add-party":
                    organisation = field(data, "organisation")
                    await runtime.dpias.add_party(
                        user,
                        dpia_id,
                        field(data, "party_role"),
                        organisation_id=int(organisation) if organisation.isdigit() else None,
                        name=field(data, "party_name", 200),
                    )
                elif action == "remove-party":
                    party_id = field(data, "party")
                    if not party_id.isdigit():
                        raise InvalidInput("no such party on this DPIA")
                    await runtime.dpias.remove_party(user, dpia_id, int(party_id))
                elif action in ("role", "remove"):
                    participant_id = field(data, "participant")
                    if not participant_id.isdigit():
                        raise InvalidInput("no such participant on this DPIA")
                    if action == "role":
                        await runtime.dpias.change_role(
                            user, dpia_id, int(participant_id), field(data, "role")
                        )
                    else:
                        await runtime.dpias.remove(user, dpia_id, int(participant_id))
                else:
                    raise InvalidInput("unknown action")
            except DomainError as failure:
                error, status = str(failure), http_status_for(failure)
            else:
                return RedirectResponse(f"/dpias/{dpia_id}/participants", status_code=303)
        people = await runtime.dpias.participants(user, dpia_id)
        parties = await runtime.dpias.parties(user, dpia_id)
        reviewers = await runtime.dpias.reviewers(user, dpia_id)
    except DomainError as failure:
        return render_error(request, failure)
    return page(
        request,
        "participants.html",
        status,
        access=access,
        people=people,
        roles=list(Role),
        parties=parties,
        party_roles=list(PartyRole),
        reviews={
            participant: [s for s, ids in reviewers.items() if participant in ids]
            for participant in {p.id for p in people}
        },
        sections=load_template().sections,
        organisations=await runtime.dpias.organisations(),
        error=error,
    )


def _local_path(raw: str) -> str:
    """Only same-site paths: no open redirect through ?next=."""
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/dpias"
    return raw[:300]


routes = [
    Route("/", home),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/dpias", dashboard),
    Route("/dpias/new", new_dpia, methods=["GET", "POST"]),
    Route("/dpias/{dpia_id}", editor),
    Route("/dpias/{dpia_id}/participants", participants, methods=["GET", "POST"]),
]
