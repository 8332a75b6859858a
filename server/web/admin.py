"""Administration pages: organisations (deployment administrators) and each organisation's
people and DPIAs (its administrators, and deployment administrators).

Each handler resolves the signed-in person's standing once (``AdminRequest``) and leaves
every decision to ``services.administration`` and its policies; anyone without the
standing a page needs gets 404, as for a DPIA they do not take part in. A change of role
and a suspension go through a confirmation page first (the GOV.UK "are you sure" pattern):
a POST without ``confirm=yes`` changes nothing and shows what would change.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.domain.administration import AdminChannel, OrgRole, check_org_role, readable_change
from server.domain.errors import DocumentNotFound, DomainError
from server.domain.inputs import whole_number
from server.domain.parties import Capacity
from server.services.admin_records import Actor, OrganisationView
from server.web.auth import runtime_of
from server.web.context import signed_in
from server.web.errors import http_status_for
from server.web.rendering import field, form, page, render_error
from server.web.runtime import Runtime

NO_PAGE = "There is no such page."


@dataclass(frozen=True, slots=True)
class AdminRequest:
    request: Request
    runtime: Runtime
    actor: Actor


def admin_page(
    handler: Callable[[AdminRequest], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        user = await signed_in(request)
        if isinstance(user, Response):
            return user
        runtime = runtime_of(request)
        standing = await runtime.administration.standing(user.id)
        actor = Actor(f"user:{user.id}", AdminChannel.BROWSER, standing, user.name, user.id)
        try:
            if not standing.administers_any():
                raise DocumentNotFound(NO_PAGE)
            return await handler(AdminRequest(request, runtime, actor))
        except DomainError as error:
            return render_error(request, error)

    return endpoint


@admin_page
async def start(context: AdminRequest) -> Response:
    """``/admin`` and ``/admin/people``: straight to the one organisation an administrator
    manages, else to the list of organisations."""
    standing = context.actor.standing
    if not standing.deployment_admin and len(standing.administers) == 1:
        (only,) = await context.runtime.administration.organisations(context.actor)
        return RedirectResponse(f"/admin/organisations/{only.code}/people", status_code=303)
    return RedirectResponse("/admin/organisations", status_code=303)


@admin_page
async def organisations(context: AdminRequest) -> Response:
    request, administration, actor = context.request, context.runtime.administration, context.actor
    values: dict[str, str | bool] = {"code": "", "name": "", "outside_partners": True}
    error, status = None, 200
    if request.method == "POST":
        data = await form(request)
        values = _organisation_values(data)
        try:
            created = await administration.create_organisation(
                actor,
                str(values["code"]),
                str(values["name"]),
                outside_partners=bool(values["outside_partners"]),
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(f"/admin/organisations/{created.code}/people", 303)
    return page(
        request,
        "admin_organisations.html",
        status,
        organisations=await administration.organisations(actor),
        deployment_admin=actor.standing.deployment_admin,
        values=values,
        error=error,
        error_field=_field_for(error, {"code": "org-code"}, "org-name"),
    )


@admin_page
async def organisation(context: AdminRequest) -> Response:
    """Edit an organisation's name, code and whether outside partners may be invited."""
    request, administration, actor = context.request, context.runtime.administration, context.actor
    current = await administration.organisation(actor, request.path_params["code"])
    if not actor.standing.deployment_admin:
        raise DocumentNotFound(NO_PAGE)
    error, status = None, 200
    values: dict[str, str | bool] = {
        "code": current.code,
        "name": current.name,
        "outside_partners": current.outside_partners,
        "reviewing_body": current.reviewing_body,
    }
    if request.method == "POST":
        data = await form(request)
        values = _organisation_values(data)
        values["reviewing_body"] = field(data, "reviewing_body", 10) == "yes"
        try:
            changed = await administration.update_organisation(
                actor,
                current.code,
                new_code=str(values["code"]),
                name=str(values["name"]),
                outside_partners=bool(values["outside_partners"]),
            )
            await administration.set_reviewing_body(
                actor, changed.code, bool(values["reviewing_body"])
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(f"/admin/organisations/{changed.code}/people", 303)
    return page(
        request,
        "admin_organisation.html",
        status,
        organisation=current,
        values=values,
        error=error,
        error_field=_field_for(error, {"code": "org-code"}, "org-name"),
        deployment_admin=True,
    )


@admin_page
async def people(context: AdminRequest) -> Response:
    """The organisation's people, and inviting one."""
    request, administration, actor = context.request, context.runtime.administration, context.actor
    org = await administration.organisation(actor, request.path_params["code"])
    error, status, values = None, 200, {"email": "", "name": "", "role": "member"}
    if request.method == "POST":
        data = await form(request)
        values = {
            "email": field(data, "email", 254),
            "name": field(data, "name", 200),
            "role": field(data, "role", 20) or "member",
        }
        try:
            await administration.invite(
                actor, org.id, values["email"], values["name"], values["role"]
            )
        except DomainError as failure:
            error, status = str(failure), http_status_for(failure)
        else:
            return RedirectResponse(
                f"/admin/organisations/{org.code}/people?invited=1", status_code=303
            )
    return page(
        request,
        "admin_people.html",
        status,
        organisation=org,
        people=await administration.people(actor, org.id),
        roles=list(OrgRole),
        values=values,
        invited=request.query_params.get("invited") == "1",
        deployment_admin=actor.standing.deployment_admin,
        error=error,
        error_field=_field_for(
            error,
            {"email": "invite-email", "account": "invite-email", "role": "invite-role"},
            "invite-name",
        ),
    )


CONFIRMATIONS = {
    "role": "Change {name}'s role to {role}?",
    "suspend": "Suspend {name}?",
    "reinstate": "Reinstate {name}?",
}


@admin_page
async def person(context: AdminRequest) -> Response:
    """One person: change their role, suspend or reinstate them, each after confirming."""
    request, runtime, actor = context.request, context.runtime, context.actor
    org = await runtime.administration.organisation(actor, request.path_params["code"])
    user_id = _person_id(request)
    someone = await runtime.administration.person(actor, org.id, user_id)
    error, status, action = None, 200, ""
    if request.method == "POST":
        data = await form(request)
        action = field(data, "action", 20)
        role = field(data, "role", 20) if action == "role" else ""
        if action == "signatory":
            roles = [str(v)[:30] for v in data.getlist("signatory_roles")][:10]
            try:
                await runtime.administration.set_signatory_roles(actor, org.id, user_id, roles)
            except DomainError as failure:
                error, status = str(failure), http_status_for(failure)
            else:
                return RedirectResponse(
                    f"/admin/organisations/{org.code}/people/{user_id}?done=signatory", 303
                )
        elif (problem := _problem(action, role)) is not None:
            error, status = problem, 400
        elif field(data, "confirm", 10) != "yes":
            label = OrgRole(role).label.lower() if role else ""
            return page(
                request,
                "admin_confirm.html",
                organisation=org,
                person=someone,
                action=action,
                role=role,
                question=CONFIRMATIONS[action].format(name=someone.name, role=label),
                yours=user_id == actor.user_id,
            )
        else:
            try:
                await _act(context, org, user_id, action, role)
            except DomainError as failure:
                error, status = str(failure), http_status_for(failure)
            else:
                return RedirectResponse(
                    f"/admin/organisations/{org.code}/people/{user_id}?done={action}", 303
                )
            someone = await runtime.administration.person(actor, org.id, user_id)
    return page(
        request,
        "admin_person.html",
        status,
        organisation=org,
        person=someone,
        roles=list(OrgRole),
        capacities=list(Capacity),
        done=request.query_params.get("done", "") if request.method == "GET" else "",
        deployment_admin=actor.standing.deployment_admin,
        error=error,
        error_field={"role": "person-new-role", "signatory": "person-signatory-dpo"}.get(
            action, "person-active"
        ),
    )


async def _act(
    context: AdminRequest, org: OrganisationView, user_id: int, action: str, role: str
) -> None:
    runtime, actor = context.runtime, context.actor
    if action == "role":
        await runtime.administration.change_role(actor, org.id, user_id, role)
    else:
        await runtime.usecases.administer.set_active(actor, user_id, action == "reinstate", org.id)


@admin_page
async def dpias(context: AdminRequest) -> Response:
    request, administration, actor = context.request, context.runtime.administration, context.actor
    org = await administration.organisation(actor, request.path_params["code"])
    return page(
        request,
        "admin_dpias.html",
        organisation=org,
        dpias=await administration.dpias(actor, org.id),
        deployment_admin=actor.standing.deployment_admin,
    )


@admin_page
async def audit(context: AdminRequest) -> Response:
    """The organisation's administrative events, from the deployment's audit chain."""
    request, administration, actor = context.request, context.runtime.administration, context.actor
    org = await administration.organisation(actor, request.path_params["code"])
    entries = await administration.audit.entries(org.id)
    return page(
        request,
        "admin_audit.html",
        organisation=org,
        entries=list(reversed(entries)),
        names=await administration.actor_names([e.record.actor for e in entries]),
        readable=readable_change,
        deployment_admin=actor.standing.deployment_admin,
    )


def _problem(action: str, role: str) -> str | None:
    """What is wrong with a person form's action, before anything is asked or done."""
    if action not in CONFIRMATIONS:
        return "Choose what to do: change the role, suspend or reinstate"
    if action == "role":
        try:
            check_org_role(role)
        except DomainError as error:
            return str(error)
    return None


def _field_for(error: str | None, words: dict[str, str], otherwise: str) -> str:
    """The id of the field an error is about, for the error summary's link: the first
    field whose word the message names, else ``otherwise``."""
    lowered = (error or "").lower()
    return next((field_id for word, field_id in words.items() if word in lowered), otherwise)


def _organisation_values(data: FormData) -> dict[str, str | bool]:
    return {
        "code": field(data, "code", 100),
        "name": field(data, "name", 1000),
        "outside_partners": field(data, "outside_partners", 10) == "yes",
    }


def _person_id(request: Request) -> int:
    try:
        return whole_number(request.path_params["user_id"], "The person's number")
    except DomainError:
        raise DocumentNotFound("There is no such person in this organisation.") from None


routes = [
    Route("/admin", start),
    Route("/admin/people", start),
    Route("/admin/organisations", organisations, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}", organisation, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}/people", people, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}/people/{user_id}", person, methods=["GET", "POST"]),
    Route("/admin/organisations/{code}/dpias", dpias),
    Route("/admin/organisations/{code}/audit", audit),
]
