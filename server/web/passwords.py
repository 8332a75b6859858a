"""Forgotten passwords: ask for a link by email, then set a new password with it.

The answer to a request is the same page whether or not the address has an account, and
the request does the same work either way: the account is looked up, and the email
queued, after the answer has been sent (a background task of the response).
"""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain.errors import DomainError, InvalidInput, TooManyAttempts
from server.services.passwords import RESET_PATH
from server.web.auth import runtime_of, sessions_ended
from server.web.errors import http_status_for
from server.web.rendering import field, form, page, render_error

FORGOT_PATH = "/forgot-password"


async def forgot_password(request: Request) -> Response:
    runtime = runtime_of(request)
    minutes = int(runtime.passwords.lifetime.total_seconds() // 60)
    if request.method == "GET":
        return page(request, "forgot_password.html", sent=False, email="", minutes=minutes)
    data = await form(request)
    email = field(data, "email", 254)
    address = request.client.host if request.client else "unknown"
    try:
        normalised = await runtime.passwords.request(email, address)
    except DomainError as error:
        response = page(
            request,
            "forgot_password.html",
            http_status_for(error),
            sent=False,
            email=email,
            minutes=minutes,
            error=str(error),
        )
        if isinstance(error, TooManyAttempts):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = page(request, "forgot_password.html", sent=True, minutes=minutes)
    response.background = BackgroundTask(runtime.passwords.send, normalised)
    return response


async def reset_password(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.path_params["token"]
    try:
        email = await runtime.passwords.holder(token)
        if request.method == "GET":
            return page(request, "reset_password.html", email=email, done=False)
        data = await form(request)
        email = await runtime.passwords.reset(
            token, field(data, "password"), field(data, "confirmation")
        )
    except InvalidInput as error:  # the new password: say which rule, ask again
        return page(request, "reset_password.html", 400, email=email, done=False, error=str(error))
    except DomainError as error:  # the link: used, expired or not ours
        return render_error(request, error)
    person = await runtime.accounts.user_by_email(email)
    if person is not None:  # its open editors close too, not only its sessions
        await sessions_ended(runtime, person.id)
    return page(request, "reset_password.html", email=email, done=True)


routes = [
    Route(FORGOT_PATH, forgot_password, methods=["GET", "POST"]),
    Route(RESET_PATH + "/{token}", reset_password, methods=["GET", "POST"]),
]
